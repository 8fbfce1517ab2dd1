"""Benchmark of `orgenv run -- cat FILE`: masking throughput. Run on demand, not by make test.

    .venv/bin/python bench/masking.py [--megabytes 10] [--repeat 5]

A stand-in server on a free local port answers the environment (the CLI fetches it over real
HTTP, as a runner does); then, for each case, `orgenv run -- cat FILE` runs `--repeat`
times, beside `cat FILE` in the same rounds. The secrets look like real
ones: 3 in 4 are 32-character tokens, 1 in 4 passwords with characters that JSON, URLs and
HTML escape (so every encoded form is in play). The cases:

- near-miss, 20 and 1,000 secrets: log lines where each token starts like a secret (a prefix
  of 4 to len-4 characters of a secret or of one of its base64 forms) and then differs, so no
  line is masked and every line costs the matcher as much as a true match almost would;
- dense, 1,000 secrets: every line holds one secret (raw, base64 or URL-encoded).

Throughput is megabytes per second from the first byte of output to the last, read from a
pipe by this script; what comes before the first byte (the interpreter, the fetch, building
the matcher) is reported apart as the start. On a busy shared machine that wall-clock figure
swings with the load, so it is printed beside megabytes per CPU second of the orgenv process
(its user + system time, less what a run over an empty file takes): the figure a quiet machine
would show, and the one that tells matcher changes apart. The targets apply to the
wall-clock figure. It prints a table and exits 1 if a target is
missed: near-miss >= 150 MB/s with 20 secrets and >= 100 MB/s with 1,000; dense >= 50 MB/s.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import random
import statistics
import string
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import quote

from context import run_context

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "oev_benchmark0000.abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
TARGETS = {("near-miss", 20): 150.0, ("near-miss", 1000): 100.0, ("dense", 1000): 50.0}
TOKEN_ALPHABET = string.ascii_letters + string.digits + "-_"
PASSWORD_ALPHABET = string.ascii_letters + string.digits + "!#$%&()*+,/:;<=>?@[]^{}~\"'"


def make_secrets(count: int, rng: random.Random) -> list[str]:
    def one(index: int) -> str:
        if index % 4 == 3:
            return "".join(rng.choice(PASSWORD_ALPHABET) for _ in range(20))
        return "".join(rng.choice(TOKEN_ALPHABET) for _ in range(32))

    return [one(index) for index in range(count)]


def log_lines(secrets: list[str], size: int, *, dense: bool, rng: random.Random) -> bytes:
    """`size` bytes of log lines, each with one token: a near-miss or a real secret."""
    encoded = [s.encode() for s in secrets]
    lookalikes = encoded + [base64.b64encode(s) for s in encoded]
    lines = []
    total = 0
    number = 0
    while total < size:
        number += 1
        if dense:
            secret = rng.choice(encoded)
            token = rng.choice(
                (secret, base64.b64encode(b"ci:" + secret), quote(secret, safe="").encode())
            )
        else:
            model = rng.choice(lookalikes)
            # Short of the whole: a base64 form minus its last characters is a form too.
            keep = rng.randrange(4, len(model) - 3)
            # The next character differs from the model's, so this never becomes a secret.
            other = rng.choice([c for c in b"QXZqxz" if c != model[keep]])
            token = (
                model[:keep]
                + bytes([other])
                + b"".join(rng.choice(TOKEN_ALPHABET).encode() for _ in range(6))
            )
        line = (
            b"2026-11-28T03:%02d:%02d.%03dZ INFO worker-%d request=%d auth=%s path=/api/v1/items "
            b"status=200 ms=%d\n"
            % (
                number // 60 % 60,
                number % 60,
                number % 1000,
                number % 8,
                number,
                token,
                number % 97,
            )
        )
        lines.append(line)
        total += len(line)
    return b"".join(lines)[:size]


def stand_in_server(secrets: list[str]) -> tuple[ThreadingHTTPServer, str]:
    variables = {f"SECRET_{i}": value for i, value in enumerate(secrets)}
    body = json.dumps(
        {
            "organization": "bench",
            "project": "masking",
            "variables": variables,
            "secrets": sorted(variables),
            "sources": {name: "project" for name in variables},
            "conflicts": [],
            "resolution_id": "bench",
        }
    ).encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


def streamed(command: list[str], env: dict[str, str]) -> tuple[float, float, float]:
    """Seconds until the first byte of output, seconds from the first byte to the last, and
    the CPU seconds (user + system) the command used in all."""
    started = time.perf_counter()
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    first = None
    while process.stdout.read1(1 << 20):
        if first is None:
            first = time.perf_counter()
    last = time.perf_counter()
    stderr = process.stderr.read()
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        sys.exit(f"{command} failed: {stderr.decode(errors='replace')}")
    first = last if first is None else first
    return first - started, last - first, usage.ru_utime + usage.ru_stime


def verify(path: Path, secrets: list[str], env: dict[str, str], *, dense: bool) -> None:
    """The masked output: unchanged for near-misses, and no secret left in the dense case."""
    out = subprocess.run(
        [sys.executable, "-m", "orgenv.runner.cli", "run", "--", "cat", str(path)],
        env=env,
        capture_output=True,
        check=True,
    ).stdout
    data = path.read_bytes()
    if not dense and out != data:
        sys.exit("near-miss output differs from the input: the bench data is wrong")
    if dense:
        leaked = [s for s in secrets if s.encode() in out]
        if leaked or out.count(b"***") < data.count(b"\n"):
            sys.exit(f"dense output still holds {len(leaked)} secrets")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--megabytes", type=float, default=10)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    size = int(args.megabytes * 1_000_000)
    rng = random.Random(15)
    print(f"{run_context()}; {args.megabytes:g} MB, median of {args.repeat}")
    print(
        f"{'case':<11}{'secrets':>8}{'orgenv MB/s':>13}{'per CPU s':>11}{'cat MB/s':>10}"
        f"{'start s':>9}  target"
    )
    missed = []
    with tempfile.TemporaryDirectory() as tmp:
        empty = Path(tmp, "empty")
        empty.write_bytes(b"")
        for (case, count), target in TARGETS.items():
            secrets = make_secrets(count, rng)
            path = Path(tmp, f"{case}-{count}.log")
            path.write_bytes(log_lines(secrets, size, dense=case == "dense", rng=rng))
            server, url = stand_in_server(secrets)
            env = {**os.environ, "ORGENV_URL": url, "ORGENV_TOKEN": TOKEN}
            env["NO_PROXY"] = "127.0.0.1,localhost"
            env["PYTHONPATH"] = str(ROOT)
            verify(path, secrets, env, dense=case == "dense")
            orgenv = [sys.executable, "-m", "orgenv.runner.cli", "run", "--", "cat"]
            runs, starts, cats, cpus, idle_cpus = [], [], [], [], []
            for _ in range(args.repeat):
                start, run, cpu = streamed([*orgenv, str(path)], env)
                starts.append(start)
                runs.append(run)
                cpus.append(cpu)
                idle_cpus.append(streamed([*orgenv, str(empty)], env)[2])
                cats.append(streamed(["cat", str(path)], env)[1])
            server.shutdown()
            server.server_close()
            start = statistics.median(starts)
            masked = size / 1e6 / statistics.median(runs)
            per_cpu = size / 1e6 / max(statistics.median(cpus) - statistics.median(idle_cpus), 1e-9)
            plain = size / 1e6 / statistics.median(cats)
            ok = masked >= target
            if not ok:
                missed.append(case)
            print(
                f"{case:<11}{count:>8,}{masked:>13.0f}{per_cpu:>11.0f}{plain:>10.0f}{start:>9.2f}  "
                f">= {target:.0f} {'ok' if ok else 'MISSED'}"
            )
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
