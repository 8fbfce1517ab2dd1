"""The orgenv CLI end to end: real HTTP, the real server (live_server), real tokens; `main()`
in-process, and a real process of its own where a test signals it or watches it stream.
These run in `make test` on both databases; nothing here is skipped."""

from __future__ import annotations

import base64
import fcntl
import json
import os
import select
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from orgenv.models import AuditEvent, Project, ProjectVariable
from orgenv.runner.cli import PIPE_BYTES
from orgenv.tokens import token_issue, token_revoke
from tests.conftest import World, production_group
from tests.runner.conftest import Result, cli_environment, run_cli

pytestmark = [
    pytest.mark.live,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("fresh_throttles"),
]

ROOT = Path(__file__).resolve().parents[2]
SECRET = "hidden-value-42"
MULTI_LINE = "-----BEGIN KEY-----\nMIIBOgIBAAJBAKj34GkxFhD9\n-----END KEY-----"


@dataclass
class Runner:
    url: str
    token: str
    project: Project

    def env(self, **extra: str) -> dict[str, str]:
        return cli_environment({"ORGENV_URL": self.url, "ORGENV_TOKEN": self.token, **extra})

    def run(self, *args: str, **extra: str) -> Result:
        """The CLI in-process (tests/runner/conftest.py); `start` when a test needs a process
        of its own to signal or watch."""
        return run_cli(*args, env=self.env(**extra))

    def start(self, *args: str) -> subprocess.Popen:
        # A session of its own: no controlling terminal, as in CI, so orgenv forwards every
        # signal it gets (see orgenv.runner.cli._terminal_already_signalled).
        return subprocess.Popen(
            [sys.executable, "-m", "orgenv.runner.cli", *args],
            env=self.env(),
            cwd=ROOT,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )


@pytest.fixture
def runner(world: World, live_server) -> Runner:
    production_group(
        world,
        variables={"PLAIN": "visible value"},
        secrets={"PRODUCTION_SECRET": SECRET, "TLS_KEY": MULTI_LINE, "PIN": "123"},
    )
    ProjectVariable.objects.create(project=world.web, name="QUOTED", value='it\'s "$HOME" `x`')
    _, token = token_issue(project=world.web, name="ci")
    return Runner(live_server.url, token, world.web)


def python(code: str) -> list[str]:
    return ["--", sys.executable, "-c", code]


def stop(process: subprocess.Popen) -> None:
    """Kill what a test started: orgenv leads its own process group (start_new_session), and
    the command and anything it left behind are in that group."""
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    process.wait()
    process.stdout.close()
    process.stderr.close()


def read_line(stream, deadline: float) -> bytes:
    """One line from a pipe, failing the test if it does not come before `deadline`."""
    line = b""
    while not line.endswith(b"\n"):
        ready, _, _ = select.select([stream], [], [], max(0.0, deadline - time.monotonic()))
        assert ready, f"no complete line in time; got {line!r}"
        chunk = os.read(stream.fileno(), 1)
        assert chunk, f"stream ended; got {line!r}"
        line += chunk
    return line


def test_run_masks_a_secret_the_command_prints(runner):
    result = runner.run("run", *python("import os; print(os.environ['PRODUCTION_SECRET'])"))
    assert result.returncode == 0, result.stderr
    assert result.stdout == b"***\n"
    assert result.stderr == b""


@pytest.mark.skipif(
    not hasattr(fcntl, "F_GETPIPE_SZ")
    or int(Path("/proc/sys/fs/pipe-max-size").read_text()) < PIPE_BYTES,
    reason="pipes cannot be widened here (Linux, pipe-max-size of 1 MiB or more)",
)
def test_run_gives_the_command_pipes_of_a_mebibyte(runner):
    # With 64 KiB pipes, a fast writer and the masker take turns every 64 KiB.
    code = "import fcntl as f\nprint(f.fcntl(1, f.F_GETPIPE_SZ), f.fcntl(2, f.F_GETPIPE_SZ))"
    result = runner.run("run", *python(code))
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"{PIPE_BYTES} {PIPE_BYTES}\n".encode()


def test_run_masks_stderr_separately_and_the_encoded_forms(runner):
    code = (
        "import base64, os, sys, urllib.parse\n"
        "s = os.environ['PRODUCTION_SECRET']\n"
        "print('b64', base64.b64encode(s.encode()).decode())\n"
        "print('url', urllib.parse.quote(os.environ['TLS_KEY'], safe=''))\n"
        "print('err', s, file=sys.stderr)\n"
        "print(os.environ['TLS_KEY'].splitlines()[1], 'pin', os.environ['PIN'])\n"
    )
    result = runner.run("run", *python(code))
    assert result.returncode == 0, result.stderr
    assert result.stdout == b"b64 ***\nurl ***\n*** pin 123\n"  # a 3-character value shows
    assert result.stderr == b"err ***\n"
    assert SECRET.encode() not in result.stdout + result.stderr
    assert base64.b64encode(SECRET.encode()) not in result.stdout


def test_run_gives_the_command_the_variables_and_where_they_came_from(runner):
    code = (
        "import json, os\n"
        "names = ['PLAIN', 'QUOTED', 'KEPT', 'ORGENV_ORGANIZATION', 'ORGENV_PROJECT',\n"
        "         'ORGENV_RESOLUTION_ID', 'ORGENV_TOKEN', 'ORGENV_URL']\n"
        "print(json.dumps({n: os.environ.get(n) for n in names}))\n"
        "print(os.environ['TLS_KEY'] == " + repr(MULTI_LINE) + ")\n"
    )
    result = runner.run("run", *python(code), KEPT="from the caller", PLAIN="overridden")
    assert result.returncode == 0, result.stderr
    first, second = result.stdout.decode().splitlines()
    seen = json.loads(first)
    event = AuditEvent.objects.filter(kind=AuditEvent.Kind.RESOLUTION).latest("pk")
    assert seen == {
        "PLAIN": "visible value",  # the project's value wins over the caller's
        "QUOTED": 'it\'s "$HOME" `x`',
        "KEPT": "from the caller",
        "ORGENV_ORGANIZATION": "acme",
        "ORGENV_PROJECT": "web",
        "ORGENV_RESOLUTION_ID": str(event.pk),
        "ORGENV_TOKEN": None,  # the command gets the values, not the credential
        "ORGENV_URL": runner.url,
    }
    assert second == "True"
    assert event.project == runner.project


def test_run_masks_the_token_itself(runner):
    result = runner.run("run", *python("import os; print(os.environ['COPY'])"), COPY=runner.token)
    assert result.stdout == b"***\n"


def test_run_exits_with_the_command_exit_code(runner):
    result = runner.run("run", *python("import sys; print('bye'); sys.exit(3)"))
    assert result.returncode == 3
    assert result.stdout == b"bye\n"


def test_a_command_that_does_not_exist_exits_127_in_one_line(runner):
    result = runner.run("run", "--", "no-such-command-orgenv")
    assert result.returncode == 127
    assert result.stderr == b"orgenv: no-such-command-orgenv: command not found.\n"


def test_a_revoked_token_fails_and_the_command_never_runs(runner, tmp_path):
    token_revoke(token=runner.project.tokens.get(name="ci"))
    ran = tmp_path / "ran"
    result = runner.run("run", *python(f"open({str(ran)!r}, 'w').close()"))
    assert result.returncode == 77
    assert result.stderr.count(b"\n") == 1
    assert b"401" in result.stderr and b"revoked" in result.stderr
    assert result.stdout == b""
    assert not ran.exists()


def test_an_unknown_token_fails_without_printing_it(runner, tmp_path):
    wrong = runner.token[:-6] + "XXXXXX"
    result = runner.run("env", ORGENV_TOKEN=wrong)
    assert result.returncode == 77
    assert b"401" in result.stderr and wrong.encode() not in result.stderr


def test_too_many_requests_fails_with_the_servers_retry_after(runner, settings, tmp_path):
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {
            **settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"],
            "token": "1/hour",
        },
    }
    assert runner.run("env").returncode == 0
    ran = tmp_path / "ran"
    result = runner.run("run", *python(f"open({str(ran)!r}, 'w').close()"))
    assert result.returncode == 75
    assert result.stderr.startswith(b"orgenv: too many requests (429")
    assert b"retry after" in result.stderr and b"seconds" in result.stderr
    assert not ran.exists()


def test_env_prints_the_api_answer_as_json(runner):
    result = runner.run("env", "--format", "json")
    assert result.returncode == 0, result.stderr
    payload = json.loads(result.stdout)
    assert payload["variables"]["PRODUCTION_SECRET"] == SECRET  # for sourcing: unmasked
    assert payload["variables"]["TLS_KEY"] == MULTI_LINE
    assert sorted(payload["secrets"]) == ["PIN", "PRODUCTION_SECRET", "TLS_KEY"]
    assert payload["sources"]["QUOTED"] == "project"
    assert payload["resolution_id"] == (
        AuditEvent.objects.filter(kind=AuditEvent.Kind.RESOLUTION).latest("pk").pk
    )


def test_env_shell_output_sources_in_sh_with_every_value_intact(runner):
    result = runner.run("env", "--format", "shell")
    assert result.returncode == 0, result.stderr
    script = result.stdout.decode() + 'printf "%s\\0" "$TLS_KEY" "$QUOTED" "$PRODUCTION_SECRET"'
    sourced = subprocess.run(["/bin/sh", "-c", script], capture_output=True, check=True)
    assert sourced.stdout.split(b"\0")[:-1] == [
        MULTI_LINE.encode(),
        b'it\'s "$HOME" `x`',
        SECRET.encode(),
    ]


def test_env_dotenv_output_matches_the_servers_dotenv(runner, live_server):
    import urllib.request

    result = runner.run("env")  # dotenv is the default
    assert result.returncode == 0, result.stderr
    request = urllib.request.Request(
        f"{live_server.url}/api/v1/environment?format=dotenv",
        headers={"Authorization": f"Bearer {runner.token}"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert sorted(result.stdout.decode().splitlines()) == sorted(
            response.read().decode().splitlines()
        )
    assert 'QUOTED="it\'s \\"$HOME\\" `x`"' in result.stdout.decode().splitlines()


def test_output_is_streamed_while_the_command_runs(runner):
    process = runner.start(
        "run", *python("import time; print('first', flush=True); time.sleep(30); print('late')")
    )
    try:
        assert read_line(process.stdout, time.monotonic() + 15) == b"first\n"
        assert process.poll() is None  # seen while the command still runs
    finally:
        stop(process)


def test_a_secret_written_in_two_pieces_with_a_pause_between_is_masked(runner):
    code = (
        "import os, sys, time\n"
        "s = os.environ['PRODUCTION_SECRET'].encode()\n"
        "out = sys.stdout.buffer\n"
        "out.write(b'start ' + s[:6]); out.flush(); time.sleep(0.5)\n"
        "out.write(s[6:] + b' end\\n'); out.flush()\n"
    )
    result = runner.run("run", *python(code))
    assert result.stdout == b"start *** end\n"


def test_sigterm_is_forwarded_and_a_signal_death_exits_128_plus_n(runner):
    process = runner.start(
        "run", *python("import time; print('ready', flush=True); time.sleep(30)")
    )
    try:
        assert read_line(process.stdout, time.monotonic() + 15) == b"ready\n"
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=15) == 128 + signal.SIGTERM
    finally:
        stop(process)


def test_sigint_is_forwarded_and_the_commands_own_exit_code_is_returned(runner):
    code = (
        "import signal, sys, time\n"
        "def stop(signum, frame):\n"
        "    print('interrupted, cleaning up', flush=True)\n"
        "    sys.exit(5)\n"
        "signal.signal(signal.SIGINT, stop)\n"
        "print('ready', flush=True)\n"
        "time.sleep(30)\n"
    )
    process = runner.start("run", *python(code))
    try:
        assert read_line(process.stdout, time.monotonic() + 15) == b"ready\n"
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=15) == 5
        assert process.stdout.read() == b"interrupted, cleaning up\n"
        assert process.stderr.read() == b""  # orgenv itself did not die of the interrupt
    finally:
        stop(process)


def test_a_background_process_holding_the_output_open_does_not_keep_orgenv_waiting(runner):
    # The command exits at once, leaving a child that keeps writing to the same pipe.
    code = (
        "import subprocess, sys\n"
        "subprocess.Popen([sys.executable, '-c', 'import time\\nfor _ in range(3000):\\n"
        '    print("tick", flush=True); time.sleep(0.01)\'])\n'
        "print('parent done', flush=True)\n"
        "sys.exit(4)\n"
    )
    process = runner.start("run", *python(code))
    try:
        assert process.wait(timeout=15) == 4
        assert process.stdout.read(12) == b"parent done\n"
    finally:
        stop(process)


def test_ctrl_c_at_a_terminal_is_not_forwarded_a_second_time(runner):
    # orgenv runs in the foreground of a terminal (a pty it controls, through `setsid -c`):
    # Ctrl-C makes the terminal signal the whole foreground group, the command included, so
    # orgenv must not send a second SIGINT of its own. The command waits for SIGINT with
    # sigtimedwait, which tells who sent each one: the terminal (no pid) or a process. (A
    # second SIGINT that arrives while the first is still pending merges with it, so this
    # catches a double forward most of the time, not always; test_cli.py pins the rule.)
    code = (
        "import os, signal\n"
        "signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})\n"
        "print('ready', flush=True)\n"
        "senders = [signal.sigtimedwait({signal.SIGINT}, 20).si_pid]\n"
        "while (info := signal.sigtimedwait({signal.SIGINT}, 1)) is not None:\n"
        "    senders.append(info.si_pid)\n"
        "print('senders:', senders, 'orgenv:', os.getppid(), flush=True)\n"
    )
    primary, secondary = os.openpty()
    try:
        process = subprocess.Popen(
            ["setsid", "-c", sys.executable, "-m", "orgenv.runner.cli", "run", *python(code)],
            env=runner.env(),
            cwd=ROOT,
            stdin=secondary,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        try:
            assert read_line(process.stdout, time.monotonic() + 15) == b"ready\n"
            os.write(primary, b"\x03")  # the terminal's interrupt character
            assert process.wait(timeout=15) == 0
            assert process.stdout.read() == f"senders: [0] orgenv: {process.pid}\n".encode()
        finally:
            stop(process)
    finally:
        os.close(primary)
        os.close(secondary)


def test_with_the_cache_down_the_cli_says_server_unavailable(runner, settings, tmp_path):
    """The rate limits need the shared cache; with it unreachable the server answers a JSON
    503 with Retry-After (not an HTML 500) and the CLI says to try again."""
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": "redis://127.0.0.1:1/0",  # nothing listens on port 1
        }
    }
    ran = tmp_path / "ran"
    result = runner.run("run", "--", sys.executable, "-c", f"open({str(ran)!r}, 'w')")
    assert result.returncode == 69
    assert "server unavailable, try again in 5 seconds (503)" in result.stderr.decode()
    assert not ran.exists()


def test_the_seed_code_sample_runs_against_the_demo(live_server) -> None:
    """The demo's ENVIRONMENT and API_KEY reach `orgenv run`, the key masked in the output."""
    from io import StringIO

    from django.core.management import call_command

    call_command("demo", stdout=StringIO())
    project = Project.objects.get(slug="staging_jobs")
    _, token = token_issue(project=project, name="seed")
    runner = Runner(live_server.url, token, project)
    code = "import os; print(os.environ['ENVIRONMENT'], os.environ['API_KEY'])"
    result = runner.run("run", "--", sys.executable, "-c", code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.decode().strip() == "staging ***"
