"""`orgenv`: run a command with a project's environment, or print it. Standard library only.

A runner image needs nothing but this package: importing it pulls in no Django (`orgenv`'s
`__init__` is empty, and `orgenv.runner.masking`, `orgenv.formats` and the `orgenv.resolution` it
uses are standard library too).
"""

from __future__ import annotations

import argparse
import fcntl
import http.client
import json
import os
import re
import select
import signal
import stat
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from email.message import Message
from typing import IO, BinaryIO

# The server's own renderings: orgenv.formats is pure (no Django), like masking.
from orgenv.formats import render_dotenv, render_shell
from orgenv.runner.masking import Masker, StreamMasker

__all__ = ["main", "fetch_environment", "FetchError", "Environment"]

VERSION = "0.1.0"
ENDPOINT = "/api/v1/environment"
# docs/concepts.md "Names and values": anything else in an answer would corrupt the command's
# environment.
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
DEFAULT_TIMEOUT = 10.0

# Exit codes of orgenv itself (sysexits.h where one fits). `run` otherwise returns the
# command's own code, so these can only be told apart from it when the command never started.
EXIT_USAGE = 2
EXIT_UNAVAILABLE = 69  # server unreachable, timed out, or answered 5xx
EXIT_PROTOCOL = 76  # an answer that is not orgenv's JSON, or an unexpected status
EXIT_TEMPFAIL = 75  # 429: too many requests
EXIT_NOPERM = 77  # 401 or 403: the token was refused
EXIT_CANNOT_EXECUTE = 126
EXIT_NOT_FOUND = 127

# A stream that has been quiet this long releases what cannot be the start of a secret.
IDLE_SECONDS = 0.05
# After the command exits, how long to wait for its output pipes to close: a background
# process it left behind may hold them open forever.
DRAIN_SECONDS = 2.0
# How much of the command's output one read takes, and the room its pipes are given.
PIPE_BYTES = 1 << 20

EPILOG = f"""\
exit codes of orgenv itself (run returns the command's exit code once it has started):
  {EXIT_USAGE:<4} usage error, or no URL or token given
  {EXIT_UNAVAILABLE:<4} the server is unreachable, timed out, or answered 5xx
  {EXIT_TEMPFAIL:<4} too many requests (429); retry after the time given
  {EXIT_PROTOCOL:<4} the answer is not orgenv's JSON (is --url the orgenv server?)
  {EXIT_NOPERM:<4} the token was refused (401 missing, unknown, expired or revoked; 403)
  {EXIT_CANNOT_EXECUTE:<4} the command is not executable
  {EXIT_NOT_FOUND:<4} the command was not found
  128+N the command died of signal N

environment:
  ORGENV_URL    default for --url, e.g. https://orgenv.example.com
  ORGENV_TOKEN  default for --token; prefer it to --token, which other users can see in ps
"""


class FetchError(Exception):
    """A failed fetch: one line for the user, and orgenv's exit code."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


@dataclass(frozen=True)
class Environment:
    organization: str
    project: str
    variables: dict[str, str]
    secrets: list[str]
    resolution_id: str
    payload: dict

    def secret_values(self) -> list[str]:
        return [self.variables[name] for name in self.secrets if name in self.variables]

    def runner_variables(self) -> dict[str, str]:
        """The variables a command gets from us: the resolved ones and ORGENV_*."""
        return {
            **self.variables,
            "ORGENV_RESOLUTION_ID": self.resolution_id,
            "ORGENV_ORGANIZATION": self.organization,
            "ORGENV_PROJECT": self.project,
        }


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    # urllib would follow a redirect with the Authorization header, possibly to another host.
    def redirect_request(
        self,
        req: urllib.request.Request,
        fp: IO[bytes],
        code: int,
        msg: str,
        headers: Message,
        newurl: str,
    ) -> urllib.request.Request | None:
        return None


def fetch_environment(url: str, token: str, *, timeout: float = DEFAULT_TIMEOUT) -> Environment:
    """GET <url>/api/v1/environment with the token; FetchError says why when it fails."""
    parsed = urllib.parse.urlsplit(url)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise FetchError(
            f"--url must be the server's address, like https://orgenv.example.com (got {url!r}).",
            EXIT_USAGE,
        )
    endpoint = url.rstrip("/") + ENDPOINT
    request = urllib.request.Request(
        endpoint,
        headers={
            "Authorization": f"Bearer {token}",
            "Accept": "application/json",
            "User-Agent": f"orgenv-cli/{VERSION}",
        },
    )
    opener = urllib.request.build_opener(_NoRedirect)
    try:
        with opener.open(request, timeout=timeout) as response:
            body = response.read()
            header_id = response.headers.get("X-Orgenv-Resolution", "")
            content_type = response.headers.get("Content-Type", "")
    except urllib.error.HTTPError as error:
        raise _http_error(error, endpoint) from None
    except urllib.error.URLError as error:
        reason = error.reason
        if isinstance(reason, TimeoutError):
            raise _timeout(endpoint, timeout) from None
        why = _one_line(str(getattr(reason, "strerror", None) or reason))
        raise FetchError(f"cannot reach {endpoint}: {why}.", EXIT_UNAVAILABLE) from None
    except TimeoutError:
        raise _timeout(endpoint, timeout) from None
    except http.client.InvalidURL as error:  # a space, a port that is no number
        raise FetchError(
            f"--url is not a valid address ({_one_line(str(error))}): {url!r}.", EXIT_USAGE
        ) from None
    except http.client.HTTPException as error:
        # The connection broke mid-answer (IncompleteRead, BadStatusLine, ...).
        raise FetchError(
            f"the answer of {endpoint} was cut short or garbled ({type(error).__name__}).",
            EXIT_UNAVAILABLE,
        ) from None
    except OSError as error:
        raise FetchError(
            f"cannot read the answer of {endpoint}: {_one_line(str(error))}.", EXIT_UNAVAILABLE
        ) from None
    return _parse_environment(body, content_type, header_id, endpoint)


def _timeout(endpoint: str, timeout: float) -> FetchError:
    return FetchError(
        f"no answer from {endpoint} within {timeout:g} seconds (see --timeout).", EXIT_UNAVAILABLE
    )


def _http_error(error: urllib.error.HTTPError, endpoint: str) -> FetchError:
    status = error.code
    detail = _detail(error)
    suffix = f": {detail}" if detail else ""
    if status == 401:
        hint = suffix or "; check ORGENV_TOKEN or --token (unknown, expired or revoked?)"
        return FetchError(f"the server refused the token (401 Unauthorized){hint}.", EXIT_NOPERM)
    if status == 403:
        return FetchError(f"the server denied access (403 Forbidden){suffix}.", EXIT_NOPERM)
    if status == 429:
        retry = _one_line(error.headers.get("Retry-After", "") if error.headers else "")
        if retry.isdigit():
            when = f"retry after {retry} seconds"
        else:  # an HTTP date, or nothing
            when = f"retry after {retry}" if retry else "retry later"
        return FetchError(f"too many requests (429 Too Many Requests); {when}.", EXIT_TEMPFAIL)
    if 300 <= status < 400:
        location = _one_line(error.headers.get("Location", "") if error.headers else "")
        return FetchError(
            f"{endpoint} redirects ({status}) to {location or 'another address'}; "
            "set --url to the final address (a token is never sent on a redirect).",
            EXIT_PROTOCOL,
        )
    if status == 503:
        retry = _one_line(error.headers.get("Retry-After", "") if error.headers else "")
        when = f" in {retry} seconds" if retry.isdigit() else ""
        return FetchError(f"server unavailable, try again{when} (503).", EXIT_UNAVAILABLE)
    if status >= 500:
        return FetchError(
            f"the server failed ({status} {error.reason}){suffix}; try again later.",
            EXIT_UNAVAILABLE,
        )
    return FetchError(
        f"unexpected answer {status} {error.reason} from {endpoint}{suffix}.", EXIT_PROTOCOL
    )


def _detail(error: urllib.error.HTTPError) -> str:
    """The `detail` of a DRF error body, on one line, or ''."""
    try:
        body = json.loads(error.read(64 * 1024) or b"null")
    except (ValueError, OSError):
        return ""
    if isinstance(body, dict) and isinstance(body.get("detail"), str):
        return _one_line(body["detail"])[:200].rstrip(".")
    return ""


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def _parse_environment(
    body: bytes, content_type: str, header_id: str, endpoint: str
) -> Environment:
    not_orgenv = (
        f"the answer of {endpoint} is not orgenv's environment JSON "
        f"(Content-Type: {_one_line(content_type) or 'none'}); is --url the orgenv server?"
    )
    try:
        payload = json.loads(body)
    except ValueError:
        raise FetchError(not_orgenv, EXIT_PROTOCOL) from None
    if not isinstance(payload, dict):
        raise FetchError(not_orgenv, EXIT_PROTOCOL)
    variables = payload.get("variables")
    secrets = payload.get("secrets", [])
    organization = payload.get("organization")
    project = payload.get("project")
    if (
        not isinstance(variables, dict)
        or not all(isinstance(v, str) and _NAME.fullmatch(k) for k, v in variables.items())
        or not isinstance(secrets, list)
        or not all(isinstance(name, str) for name in secrets)
        or not isinstance(organization, str)
        or not isinstance(project, str)
    ):
        raise FetchError(not_orgenv, EXIT_PROTOCOL)
    resolution_id = payload.get("resolution_id", header_id)
    return Environment(
        organization=organization,
        project=project,
        variables=variables,
        secrets=secrets,
        resolution_id="" if resolution_id is None else str(resolution_id),
        payload=payload,
    )


# --- env ----------------------------------------------------------------------------------


def render(fmt: str, environment: Environment) -> str:
    """The environment as json (the API's shape), dotenv or shell `export` lines."""
    if fmt == "json":
        return json.dumps(environment.payload, indent=2, ensure_ascii=False) + "\n"
    variables = environment.variables
    if fmt == "dotenv":
        return render_dotenv(variables)
    if fmt == "shell":
        return render_shell(variables)
    raise ValueError(f"unknown format {fmt!r}")


# --- run ----------------------------------------------------------------------------------


def _widen(pipe: int | IO[str]) -> None:
    """Give a pipe room for PIPE_BYTES (Linux; elsewhere, or above the system's limit, it
    keeps its size): with the default 64 KiB, a fast writer and the masker take turns at
    every 64 KiB, and each turn waits for the scheduler."""
    try:
        fd = pipe if isinstance(pipe, int) else pipe.fileno()
        if stat.S_ISFIFO(os.fstat(fd).st_mode):
            fcntl.fcntl(fd, fcntl.F_SETPIPE_SZ, PIPE_BYTES)
    except (AttributeError, OSError, ValueError):
        pass


def _pump(fd: int, masker: StreamMasker, out: BinaryIO, stop: threading.Event) -> None:
    """Copy a pipe to `out`, masked, as it arrives; see orgenv.runner.masking for what is held."""
    writable = True

    def write(data: bytes) -> None:
        nonlocal writable
        if data and writable:
            try:
                out.write(data)
                out.flush()
            except (BrokenPipeError, ValueError, OSError):
                # Our reader went away: keep draining so the command never blocks on a full pipe.
                writable = False

    try:
        # `stop` is set when the command has exited but something it left behind still holds
        # the pipe open, quiet or not.
        while not stop.is_set():
            ready, _, _ = select.select([fd], [], [], IDLE_SECONDS)
            if not ready:
                if masker.holding:
                    write(masker.release_idle())
                continue
            data = os.read(fd, PIPE_BYTES)
            if not data:
                break
            write(masker.feed(data))
    finally:
        write(masker.close())
        os.close(fd)


def _exit_status(returncode: int) -> int:
    return 128 - returncode if returncode < 0 else returncode


def _terminal_already_signalled() -> bool:
    """True when a Ctrl-C at the terminal has reached the command directly.

    The command shares our process group; when that group is in the terminal's foreground,
    the terminal sends SIGINT to all of us, and forwarding it again would make the command see
    two interrupts (many programs abort hard on the second one).
    """
    try:
        fd = os.open("/dev/tty", os.O_RDONLY | os.O_NOCTTY)
    except OSError:
        return False
    try:
        return os.tcgetpgrp(fd) == os.getpgrp()
    except OSError:
        return False
    finally:
        os.close(fd)


def run_command(command: Sequence[str], environment: Environment, *, token: str) -> int:
    """Run `command` with the environment, its output masked; its exit status."""
    env = dict(os.environ)
    # The command gets the values, not the credential that fetched them.
    env.pop("ORGENV_TOKEN", None)
    env.update(environment.runner_variables())
    masker = Masker([*environment.secret_values(), token])

    process: subprocess.Popen[bytes] | None = None
    pending: list[int] = []

    def forward(signum: int, _frame: object) -> None:
        if signum == signal.SIGINT and _terminal_already_signalled():
            return
        if process is None:
            pending.append(signum)
            return
        try:
            process.send_signal(signum)
        except ProcessLookupError:
            pass

    forwarded = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
    previous = {signum: signal.signal(signum, forward) for signum in forwarded}
    try:
        if pending:
            # Cancelled between the fetch and the start: do not start at all.
            return 128 + pending[0]
        # Our own pipes, widened before the command can write a byte.
        (out_read, out_write), (err_read, err_write) = os.pipe(), os.pipe()
        for pipe in (out_write, err_write, sys.stdout, sys.stderr):
            _widen(pipe)
        try:
            process = subprocess.Popen(list(command), env=env, stdout=out_write, stderr=err_write)
        except FileNotFoundError:
            _error(f"{command[0]}: command not found.")
            return EXIT_NOT_FOUND
        except PermissionError:
            _error(f"{command[0]}: permission denied (not executable).")
            return EXIT_CANNOT_EXECUTE
        except (OSError, ValueError) as error:
            _error(f"{command[0]}: cannot be started: {_one_line(str(error))}.")
            return EXIT_CANNOT_EXECUTE
        finally:
            os.close(out_write)
            os.close(err_write)
            if process is None:
                os.close(out_read)
                os.close(err_read)
        for signum in pending:
            process.send_signal(signum)

        stop = threading.Event()
        pumps = [
            threading.Thread(target=_pump, args=(fd, StreamMasker(masker), out, stop), daemon=True)
            for fd, out in ((out_read, sys.stdout.buffer), (err_read, sys.stderr.buffer))
        ]
        for pump in pumps:
            pump.start()
        returncode = process.wait()
        drained_by = time.monotonic() + DRAIN_SECONDS
        for pump in pumps:
            pump.join(max(0.0, drained_by - time.monotonic()))
        stop.set()
        for pump in pumps:
            pump.join()
        return _exit_status(returncode)
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


# --- entry point --------------------------------------------------------------------------


def _error(message: str) -> None:
    sys.stderr.write(f"orgenv: {message}\n")
    sys.stderr.flush()


def _seconds(text: str) -> float:
    try:
        seconds = float(text)
    except ValueError:
        seconds = 0.0
    if not 0 < seconds < float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds, not {text!r}")
    return seconds


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="orgenv",
        description="Fetch a project's environment from orgenv with a project token, and run a "
        "command with it (secrets masked in its output) or print it.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"orgenv {VERSION}")
    commands = parser.add_subparsers(dest="verb", required=True, metavar="{run,env}")

    def connection(sub: argparse.ArgumentParser) -> None:
        sub.add_argument(
            "--url",
            default=os.environ.get("ORGENV_URL"),
            help="the orgenv server, e.g. https://orgenv.example.com (default: $ORGENV_URL)",
        )
        sub.add_argument(
            "--token",
            default=os.environ.get("ORGENV_TOKEN"),
            help="a project token oev_… (default: $ORGENV_TOKEN, which is safer than this flag)",
        )
        sub.add_argument(
            "--timeout",
            type=_seconds,
            default=DEFAULT_TIMEOUT,
            metavar="SECONDS",
            help=f"seconds to wait for the server (default: {DEFAULT_TIMEOUT:g})",
        )

    run = commands.add_parser(
        "run",
        help="run a command with the environment; secrets are masked in its output",
        description="Start COMMAND with the project's variables layered over the current "
        "environment, plus ORGENV_RESOLUTION_ID, ORGENV_ORGANIZATION and ORGENV_PROJECT "
        "(ORGENV_TOKEN is removed). Its stdout and stderr are streamed with every secret of 4 "
        "or more characters, and its base64 and URL-encoded forms, replaced by ***. SIGINT, "
        "SIGTERM and SIGHUP are forwarded to it; orgenv exits with its exit code (128+N if it "
        "died of signal N). If the fetch fails, COMMAND is never started.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        usage="orgenv run [--url URL] [--token TOKEN] [--timeout SECONDS] -- COMMAND [ARGS ...]",
    )
    connection(run)
    run.set_defaults(subparser=run)
    run.add_argument("command", nargs=argparse.REMAINDER, help="the command and its arguments")

    env = commands.add_parser(
        "env",
        help="print the environment (secrets included, for sourcing)",
        description="Print the project's resolved environment, secrets included.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    connection(env)
    env.add_argument(
        "--format",
        choices=("dotenv", "json", "shell"),
        default="dotenv",
        help="dotenv: NAME=\"value\" lines; json: the API's answer; shell: export NAME='value' "
        "lines for `. <(orgenv env --format shell)` (default: dotenv)",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    command = list(getattr(args, "command", None) or [])
    if command and command[0] == "--":
        command = command[1:]
    if args.verb == "run" and not command:
        args.subparser.error("a command is needed: orgenv run -- COMMAND [ARGS ...]")
    if not args.url:
        _error("no server given: set ORGENV_URL or pass --url.")
        return EXIT_USAGE
    if not args.token:
        _error("no token given: set ORGENV_TOKEN or pass --token.")
        return EXIT_USAGE
    try:
        environment = fetch_environment(args.url, args.token, timeout=args.timeout)
    except FetchError as error:
        # Belt and braces: whatever a server echoes, the token is not printed.
        message = str(error)
        if len(args.token) >= 4:
            message = message.replace(args.token, "***")
        _error(message)
        return error.exit_code
    if args.verb == "env":
        sys.stdout.write(render(args.format, environment))
        sys.stdout.flush()
        return 0
    return run_command(command, environment, token=args.token)


if __name__ == "__main__":
    sys.exit(main())
