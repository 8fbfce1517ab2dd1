"""The orgenv CLI where the orgenv server is not needed: failed fetches over real HTTP from a
stand-in server (it answers what a broken proxy or an overloaded server would), the output
formats, and the promise that the CLI needs nothing but the standard library.

The CLI against the real server is tests/runner/test_cli_live.py.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from orgenv.runner.cli import Environment, render

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "oev_standin00000.abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"


def orgenv(*args: str, env: dict[str, str] | None = None, timeout: float = 30):
    """Run the CLI as a runner would, in a fresh interpreter."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("ORGENV_")}
    full_env["NO_PROXY"] = "127.0.0.1,localhost"  # a proxy of the machine must not intercept
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "orgenv.runner.cli", *args],
        env=full_env,
        cwd=ROOT,
        capture_output=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


def touch_command(path: Path) -> list[str]:
    """A command whose only effect is to create `path`: proof that it ran."""
    return ["--", sys.executable, "-c", f"open({str(path)!r}, 'w').close()"]


Reply = Callable[[BaseHTTPRequestHandler], None]


@contextmanager
def stand_in_server(reply: Reply) -> Iterator[tuple[str, list[dict[str, str]]]]:
    """An HTTP server on a free local port answering every GET with `reply`; yields its URL
    and the headers of the requests it received."""
    received: list[dict[str, str]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
            received.append({"path": self.path, **dict(self.headers)})
            reply(self)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", received
    finally:
        server.shutdown()
        server.server_close()


def answer(status: int, body: bytes, content_type: str = "application/json", **headers: str):
    def reply(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(status)
        handler.send_header("Content-Type", content_type)
        handler.send_header("Content-Length", str(len(body)))
        for name, value in headers.items():
            handler.send_header(name.replace("_", "-"), value)
        handler.end_headers()
        handler.wfile.write(body)

    return reply


def assert_failed_in_one_line(result, code: int, *phrases: str) -> str:
    stderr = result.stderr.decode()
    assert result.returncode == code, stderr
    assert stderr.count("\n") == 1 and stderr.startswith("orgenv: "), stderr
    for phrase in phrases:
        assert phrase in stderr
    assert TOKEN not in stderr and TOKEN.split(".")[1] not in stderr
    assert result.stdout == b""
    return stderr


def test_importing_the_cli_pulls_in_no_django():
    code = (
        "import sys, orgenv.runner.cli, orgenv.runner.masking; "
        "loaded = [m for m in sys.modules if m.split('.')[0] in ('django', 'rest_framework')]; "
        "print(loaded)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, check=True, text=True
    )
    assert result.stdout.strip() == "[]"


def test_help_documents_the_exit_codes():
    result = orgenv("run", "--help")
    assert result.returncode == 0
    out = result.stdout.decode()
    for line in ("ORGENV_URL", "ORGENV_TOKEN", "77", "429", "127", "128+N"):
        assert line in out


def test_it_refuses_to_run_without_a_token_and_never_starts_the_command(tmp_path):
    ran = tmp_path / "ran"
    result = orgenv("run", *touch_command(ran), env={"ORGENV_URL": "http://127.0.0.1:9"})
    assert_failed_in_one_line(result, 2, "no token given", "ORGENV_TOKEN")
    assert not ran.exists()


def test_it_refuses_to_run_without_a_server_address(tmp_path):
    ran = tmp_path / "ran"
    result = orgenv("run", *touch_command(ran), env={"ORGENV_TOKEN": TOKEN})
    assert_failed_in_one_line(result, 2, "no server given", "ORGENV_URL")
    assert not ran.exists()


def test_it_rejects_a_url_that_is_not_http():
    result = orgenv("env", "--url", "orgenv.example.com", "--token", TOKEN)
    assert_failed_in_one_line(result, 2, "--url must be the server's address")


@pytest.mark.parametrize("url", ["http://orgenv example.com", "http://127.0.0.1:port"])
def test_it_rejects_a_url_that_is_not_a_valid_address(url):
    result = orgenv("env", "--url", url, "--token", TOKEN)
    assert_failed_in_one_line(result, 2, "--url is not a valid address")


def test_an_unreachable_server_fails_in_one_line_and_the_command_never_runs(tmp_path):
    with socket.socket() as probe:  # a port nobody listens on: bound, then released
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    ran = tmp_path / "ran"
    result = orgenv(
        "run", "--url", f"http://127.0.0.1:{port}", "--token", TOKEN, *touch_command(ran)
    )
    assert_failed_in_one_line(result, 69, "cannot reach", f"127.0.0.1:{port}", "refused")
    assert not ran.exists()


def test_a_server_that_does_not_answer_in_time_fails_with_the_timeout(tmp_path):
    def slow(handler: BaseHTTPRequestHandler) -> None:
        time.sleep(3)
        answer(200, b"{}")(handler)

    ran = tmp_path / "ran"
    with stand_in_server(slow) as (url, _):
        started = time.monotonic()
        result = orgenv(
            "run", "--url", url, "--token", TOKEN, "--timeout", "0.5", *touch_command(ran)
        )
        elapsed = time.monotonic() - started
    assert_failed_in_one_line(result, 69, "no answer", "within 0.5 seconds")
    assert elapsed < 2.5
    assert not ran.exists()


@pytest.mark.parametrize(
    ("reply", "code", "phrases"),
    [
        (
            answer(429, b'{"detail": "Request was throttled."}', Retry_After="42"),
            75,
            ["429", "retry after 42 seconds"],
        ),
        (answer(403, b'{"detail": "Nope."}'), 77, ["403", "Nope"]),
        (answer(500, b"<h1>Server Error</h1>", "text/html"), 69, ["500", "try again later"]),
        (answer(502, b"bad gateway", "text/plain"), 69, ["502"]),
        (
            answer(503, b'{"detail": "The server is unavailable."}', Retry_After="5"),
            69,
            ["server unavailable, try again in 5 seconds (503)"],
        ),
        (answer(200, b"<html>login</html>", "text/html"), 76, ["not orgenv's", "text/html"]),
        (answer(200, b'{"variables": ["not", "a", "mapping"]}'), 76, ["not orgenv's"]),
        (
            answer(200, b'{"organization": "a", "project": "b", "variables": {"A=B": "x"}}'),
            76,
            ["not orgenv's"],
        ),
        (answer(404, b"<html>not found</html>", "text/html"), 76, ["unexpected answer 404"]),
    ],
    ids=["429", "403", "500", "502", "503", "html", "wrong-shape", "bad-name", "404"],
)
def test_a_failed_fetch_says_why_in_one_line_and_never_starts_the_command(
    tmp_path, reply, code, phrases
):
    ran = tmp_path / "ran"
    with stand_in_server(reply) as (url, received):
        result = orgenv("run", "--url", url, "--token", TOKEN, *touch_command(ran))
    assert_failed_in_one_line(result, code, *phrases)
    assert not ran.exists()
    assert received[0]["path"] == "/api/v1/environment"
    assert received[0]["Authorization"] == f"Bearer {TOKEN}"


def test_an_answer_cut_short_fails_in_one_line(tmp_path):
    def cut_short(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", "1000")
        handler.end_headers()
        handler.wfile.write(b'{"variables": {')

    ran = tmp_path / "ran"
    with stand_in_server(cut_short) as (url, _):
        result = orgenv("run", "--url", url, "--token", TOKEN, *touch_command(ran))
    assert_failed_in_one_line(result, 69, "cut short", "IncompleteRead")
    assert not ran.exists()


def test_a_redirect_is_not_followed_with_the_token(tmp_path):
    ran = tmp_path / "ran"
    with stand_in_server(answer(302, b"", Location="http://127.0.0.1:9/elsewhere")) as (
        url,
        received,
    ):
        result = orgenv("run", "--url", url, "--token", TOKEN, *touch_command(ran))
    assert_failed_in_one_line(result, 76, "redirects (302)", "127.0.0.1:9/elsewhere")
    assert len(received) == 1
    assert not ran.exists()


def test_a_token_echoed_by_a_server_is_not_printed():
    body = json.dumps({"detail": f"bad token {TOKEN}"}).encode()
    with stand_in_server(answer(401, body)) as (url, _):
        result = orgenv("env", "--url", url, "--token", TOKEN)
    assert_failed_in_one_line(result, 77, "401", "bad token ***")


def test_a_bare_401_suggests_checking_the_token():
    with stand_in_server(answer(401, b"")) as (url, _):
        result = orgenv("env", "--url", url, "--token", TOKEN)
    assert_failed_in_one_line(result, 77, "401", "check ORGENV_TOKEN", "revoked")


# --- formats ----------------------------------------------------------------------------


def environment(variables: dict[str, str], secrets: list[str] = ()) -> Environment:
    payload = {
        "organization": "acme",
        "project": "web",
        "variables": variables,
        "secrets": list(secrets),
        "sources": {name: "project" for name in variables},
        "conflicts": [],
        "resolution_id": 7,
    }
    return Environment("acme", "web", variables, list(secrets), "7", payload)


def test_the_json_format_is_the_api_answer():
    env = environment({"A": "1", "S": "sécret"}, ["S"])
    assert json.loads(render("json", env)) == env.payload
    assert "sécret" in render("json", env)  # readable, not \\u-escaped


def test_the_dotenv_format_single_quotes_where_it_can_and_double_quotes_with_escapes_elsewhere():
    env = environment({"A": 'say "hi"\\n', "B": "two\nlines\tand\r", "C": "$HOME `x`"})
    assert render("dotenv", env) == (
        "A='say \"hi\"\\n'\nB=\"two\\nlines\\tand\\r\"\nC='$HOME `x`'\n"
    )


shell_values = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
    max_size=40,
)


@settings(max_examples=60, deadline=None)
@given(values=st.lists(shell_values, min_size=1, max_size=4))
def test_the_shell_format_round_trips_through_sh(values):
    variables = {f"V{i}": value for i, value in enumerate(values)}
    script = render("shell", environment(variables))
    script += "".join(f'printf "%s\\0" "$V{i}"\n' for i in range(len(values)))
    result = subprocess.run(
        ["/bin/sh", "-c", script], capture_output=True, check=True, env={"PATH": "/usr/bin:/bin"}
    )
    assert result.stdout.split(b"\0")[:-1] == [value.encode() for value in values]


def test_the_console_script_is_installed():
    script = Path(sys.executable).parent / "orgenv"
    result = subprocess.run([script, "--version"], capture_output=True, text=True, check=True)
    assert result.stdout.startswith("orgenv ")


def test_a_terminal_interrupt_is_recognised_only_in_the_terminals_foreground():
    check = "from orgenv.runner.cli import _terminal_already_signalled as t; print(t())"
    primary, secondary = os.openpty()
    try:
        # `setsid -c`: a session whose controlling terminal is the pty, in its foreground.
        in_foreground = subprocess.run(
            ["setsid", "-c", sys.executable, "-c", check],
            stdin=secondary,
            capture_output=True,
            cwd=ROOT,
            check=True,
        )
    finally:
        os.close(primary)
        os.close(secondary)
    # A session of its own without a terminal, as under a CI runner.
    detached = subprocess.run(
        [sys.executable, "-c", check],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        cwd=ROOT,
        check=True,
        start_new_session=True,
    )
    assert in_foreground.stdout == b"True\n"
    assert detached.stdout == b"False\n"


def test_a_timeout_must_be_a_positive_number_of_seconds():
    result = orgenv("env", "--url", "http://127.0.0.1:9", "--token", TOKEN, "--timeout", "0")
    assert result.returncode == 2
    assert b"--timeout: must be a positive number of seconds, not '0'" in result.stderr
