"""Benchmark of GET /api/v1/environment. Run on demand, not by make test.

    .venv/bin/python bench/resolve.py [--database sqlite|postgres|both] [--rounds 3]
                                      [--duration 10] [--connections 8]

For each database it creates a fresh one (a SQLite file in a temporary directory, in WAL
mode with synchronous=NORMAL and immediate transactions; the PostgreSQL database
`orgenv_bench` at 127.0.0.1:5432, dropped and recreated, left for inspection), seeds three
projects, each in its own organization so that nothing but its own data is read:

- floor: no variables at all (what a request costs without resolving anything);
- big: 10 groups x 20 variables, half of them secret, plus 20 project overrides;
- huge: 50 groups x 20 variables, half secret;

issues a token per project, serves the app with gunicorn (2 workers, 127.0.0.1, a free
port, DEBUG off, freshly generated keys, throttles raised out of the way) and drives it with
wrk (8 connections), floor/big/huge in alternating rounds so that noise from the machine
falls on all three alike. It prints requests per second, the ratios big/floor and
huge/floor and the non-2xx counts, and exits 1 if the target is missed:
big >= 0.7 x floor, huge >= 0.4 x floor, no errors.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
PG_ADMIN_URL = "postgres://postgres@127.0.0.1:5432/postgres"
PG_BENCH_DB = "orgenv_bench"
TARGETS = {"big": 0.7, "huge": 0.4}
PROJECTS = ("floor", "big", "huge")


# --- seeding (runs in a child process with Django set up against the bench database) ---


def seed() -> dict[str, str]:
    import django

    django.setup()
    from orgenv.actors import acting_as
    from orgenv.models import Organization, Project, ProjectVariable, Variable, VariableGroup
    from orgenv.tokens import token_issue

    def project(slug: str) -> Project:
        org = Organization.objects.create(slug=f"bench-{slug}", name=f"Bench {slug}")
        return Project.objects.create(organization=org, slug=slug, name=slug)

    def groups(target: Project, count: int, per_group: int) -> None:
        for g in range(count):
            group = VariableGroup.objects.create(
                organization=target.organization, name=f"group-{g:02}", priority=g % 3
            )
            group.projects.add(target)
            Variable.objects.bulk_create(
                Variable(
                    group=group,
                    # Half the names repeat across groups, so precedence and conflicts work.
                    name=f"VAR_{v:02}" if v % 2 else f"G{g:02}_VAR_{v:02}",
                    value=f"value-{g}-{v}-" + secrets.token_urlsafe(24),
                    is_secret=v % 2 == 0,
                )
                for v in range(per_group)
            )

    tokens = {}
    with acting_as("system:bench"):
        floor = project("floor")
        big = project("big")
        groups(big, 10, 20)
        ProjectVariable.objects.bulk_create(
            ProjectVariable(project=big, name=f"VAR_{v:02}", value=f"override-{v}")
            for v in range(1, 40, 2)
        )
        huge = project("huge")
        groups(huge, 50, 20)
        for target in (floor, big, huge):
            tokens[target.slug] = token_issue(project=target, name="bench")[1]
    return tokens


# --- orchestration ---


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def run(cmd: list[str], env: dict[str, str], **kwargs: object) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, env=env, cwd=ROOT, check=True, text=True, **kwargs)


def reset_postgres() -> None:
    import psycopg

    with psycopg.connect(
        "host=127.0.0.1 port=5432 user=postgres dbname=postgres", autocommit=True
    ) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{PG_BENCH_DB}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{PG_BENCH_DB}"')


def environment(database_url: str) -> dict[str, str]:
    from cryptography.fernet import Fernet

    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "DATABASE_"))}
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings",
        DATABASE_URL=database_url,
        DEBUG="0",
        SECRET_KEY=secrets.token_urlsafe(50),
        FERNET_KEYS=Fernet.generate_key().decode(),
        ALLOWED_HOSTS="127.0.0.1",
        CACHE_URL="locmemcache://bench",
        THROTTLE_TOKEN_RATE="100000000/s",
        THROTTLE_AUTH_FAILURE_RATE="100000000/s",
        LOG_LEVEL="WARNING",
        PYTHONPATH=str(ROOT),
    )
    return env


def wait_until_up(url: str, token: str, process: subprocess.Popen, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit("gunicorn exited before serving; see its output above.")
        try:
            with urllib.request.urlopen(request, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise SystemExit(f"gunicorn did not answer on {url} within {timeout:.0f} s.")


def wrk(url: str, token: str, *, seconds: int, connections: int) -> dict[str, float]:
    out = subprocess.run(
        [
            "wrk",
            "-t2",
            f"-c{connections}",
            f"-d{seconds}s",
            "-H",
            f"Authorization: Bearer {token}",
            url,
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    socket_errors = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out
    )
    errors = int(non_2xx.group(1)) if non_2xx else 0
    if socket_errors:
        errors += sum(int(n) for n in socket_errors.groups())
    return {"rps": rps, "errors": errors}


def bench_database(name: str, database_url: str, args: argparse.Namespace) -> dict:
    env = environment(database_url)
    print(f"\n== {name}: migrating and seeding {database_url}", flush=True)
    run([PYTHON, "manage.py", "migrate", "-v0"], env)
    tokens = json.loads(
        run([PYTHON, __file__, "--seed"], env, capture_output=True).stdout.strip().splitlines()[-1]
    )
    port = free_port()
    server = subprocess.Popen(
        [
            str(Path(PYTHON).with_name("gunicorn")),
            "config.wsgi",
            "--workers",
            "2",
            "--bind",
            f"127.0.0.1:{port}",
            "--log-level",
            "warning",
        ],
        env=env,
        cwd=ROOT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}/api/v1/environment"
    results: dict[str, list[dict[str, float]]] = {p: [] for p in PROJECTS}
    try:
        wait_until_up(url, tokens["floor"], server)
        # Warm-up: every worker decrypts each value once, and imports are done.
        for project in PROJECTS:
            wrk(url, tokens[project], seconds=2, connections=args.connections)
        for round_ in range(1, args.rounds + 1):
            for project in PROJECTS:
                result = wrk(
                    url, tokens[project], seconds=args.duration, connections=args.connections
                )
                results[project].append(result)
                print(
                    f"  round {round_} {project:5}: {result['rps']:8.1f} req/s, "
                    f"{result['errors']:.0f} errors",
                    flush=True,
                )
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
    summary = {
        p: {
            "rps": statistics.median(r["rps"] for r in results[p]),
            "errors": sum(r["errors"] for r in results[p]),
        }
        for p in PROJECTS
    }
    floor = summary["floor"]["rps"]
    summary["ratios"] = {p: summary[p]["rps"] / floor for p in TARGETS}
    return summary


def report(name: str, summary: dict) -> bool:
    ok = True
    print(f"\n{name}: median req/s over the rounds")
    for project in PROJECTS:
        s = summary[project]
        print(f"  {project:5} {s['rps']:8.1f} req/s   non-2xx/errors: {s['errors']:.0f}")
        ok &= s["errors"] == 0
    for project, target in TARGETS.items():
        ratio = summary["ratios"][project]
        met = ratio >= target
        ok &= met
        print(f"  {project}/floor = {ratio:.2f} (target >= {target}) {'ok' if met else 'MISSED'}")
    return ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=int, default=10, help="seconds per wrk run")
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--seed", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.seed:
        print(json.dumps(seed()))
        return 0
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed (Debian: apt-get install wrk).")

    summaries = {}
    with tempfile.TemporaryDirectory(prefix="orgenv-bench-") as tmp:
        if args.database in ("sqlite", "both"):
            # config/settings.py runs every SQLite database in WAL mode with immediate
            # transactions, as behind any web server: the benchmark measures the same set-up.
            url = f"sqlite:///{tmp}/bench.sqlite3"
            summaries["SQLite"] = bench_database("SQLite", url, args)
        if args.database in ("postgres", "both"):
            reset_postgres()
            url = f"postgres://postgres@127.0.0.1:5432/{PG_BENCH_DB}"
            summaries["PostgreSQL"] = bench_database("PostgreSQL", url, args)
    ok = all([report(name, summary) for name, summary in summaries.items()])
    print("\nTarget met." if ok else "\nTarget MISSED.")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    sys.exit(main())
