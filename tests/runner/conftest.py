"""Running the orgenv CLI in-process: `main()` with the environment and streams it would
have, for every test that does not need a process of its own (signals, a terminal, the
import check)."""

from __future__ import annotations

import io
import os
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass

from orgenv.runner.cli import main


@dataclass
class Result:
    returncode: int
    stdout: bytes
    stderr: bytes


def cli_environment(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The caller's environment without ORGENV_ variables, plus `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ORGENV_")}
    env["NO_PROXY"] = "127.0.0.1,localhost"  # a proxy of the machine must not intercept
    return {**env, **(extra or {})}


def run_cli(*args: str, env: dict[str, str] | None = None) -> Result:
    """orgenv ARGS, in this process: os.environ is `env` (cli_environment()) while it runs,
    and its stdout and stderr, text and bytes alike, are captured."""
    out = io.TextIOWrapper(io.BytesIO(), encoding="utf-8", write_through=True)
    err = io.TextIOWrapper(io.BytesIO(), encoding="utf-8", write_through=True)
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(env if env is not None else cli_environment())
    try:
        with redirect_stdout(out), redirect_stderr(err):
            try:
                code = main(list(args))
            except SystemExit as exit_:  # argparse: --help, usage errors
                code = exit_.code if isinstance(exit_.code, int) else 1
    finally:
        os.environ.clear()
        os.environ.update(saved)
    return Result(code, out.buffer.getvalue(), err.buffer.getvalue())
