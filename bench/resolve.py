"""Benchmark of GET /api/v1/environment. Run on demand, not by make test.

    .venv/bin/python bench/resolve.py [--database sqlite|postgres|both] [--rounds 3]
                                      [--duration 10] [--connections 8]
                                      [--cache local|redis|both]

For each database it creates a fresh one (a SQLite file in a temporary directory, in WAL
mode with synchronous=NORMAL and immediate transactions; the PostgreSQL database
`orgenv_bench_<checkout directory>` at 127.0.0.1:5432, dropped and recreated, left for
inspection), seeds three projects, each in its own organization so that nothing but its own
data is read:

- floor: no variables at all (what a request costs without resolving anything);
- big: 10 groups x 20 variables, half of them secret, plus 20 project overrides;
- huge: 50 groups x 20 variables, half secret;

issues a token per project, serves the app with gunicorn (2 workers, 127.0.0.1, a free
port, DEBUG off, freshly generated keys, throttles raised out of the way but counting), and
beside it the
`limit` reference (bench/limit_app.py: bare Django, no database, no middleware, answering
big's body from memory) with the same gunicorn settings. wrk (8 connections) drives, in
alternating rounds so that noise from the machine falls on all alike: limit, floor, big,
huge, and big revalidated with its ETag (304). It prints requests per second, the ratios
and the non-2xx counts, and exits 1 if a target is missed: floor/limit >= 0.25,
big/floor >= 0.9, huge/floor >= 0.8, 304/floor >= 1.5, no errors.

Each database runs twice (--cache both, the default): with the local-memory cache (one app
server; each worker counts the rate limits for itself) and with the cache several app
servers share, Redis at 127.0.0.1:6379 (database 0, under a key prefix of this run, removed
after it) — where each request's rate limits cost a round trip.
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

from context import run_context

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
PG_ADMIN_URL = "postgres://postgres@127.0.0.1:5432/postgres"
# One database per checkout: engineers benchmarking side by side must not drop each other's.
PG_BENCH_DB = f"orgenv_bench_{ROOT.name}"
# Each figure as a ratio, and its target: floor against the bare-Django limit, the others
# against floor.
TARGETS = {
    ("floor", "limit"): 0.25,
    ("big", "floor"): 0.9,
    ("huge", "floor"): 0.8,
    ("304", "floor"): 1.5,
}
# wrk runs, in this order in every round: the limit reference, the three projects, and the
# big project revalidated with its ETag (If-None-Match: 304).
RUNS = ("limit", "floor", "big", "huge", "304")


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


REDIS = "redis://127.0.0.1:6379/0"
CACHES = {"local": "local-memory cache", "redis": "Redis cache"}


def cache_url(cache: str, prefix: str) -> str:
    return f"{REDIS}?key_prefix={prefix}" if cache == "redis" else "locmemcache://bench"


def forget_redis_keys(prefix: str) -> None:
    import redis

    client = redis.Redis.from_url(REDIS)
    for key in client.scan_iter(match=f"{prefix}:*"):
        client.delete(key)


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


def wrk(url: str, token: str, *headers: str, seconds: int, connections: int) -> dict[str, float]:
    out = subprocess.run(
        [
            "wrk",
            "-t2",
            f"-c{connections}",
            f"-d{seconds}s",
            "-H",
            f"Authorization: Bearer {token}",
            *headers,
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


def gunicorn(app: str, env: dict[str, str], port: int, *extra: str) -> subprocess.Popen:
    """The same gunicorn settings for orgenv and for the limit reference."""
    return subprocess.Popen(
        [
            str(Path(PYTHON).with_name("gunicorn")),
            app,
            *extra,
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


def fetch(url: str, token: str) -> tuple[bytes, str, str]:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return response.read(), response.headers["Content-Type"], response.headers["ETag"]


def bench_database(
    name: str, database_url: str, args: argparse.Namespace, tmp: str
) -> dict[str, dict]:
    """The runs against one database, seeded once, with each cache asked for."""
    env = environment(database_url)
    print(f"\n== {name}: migrating and seeding {database_url}", flush=True)
    run([PYTHON, "manage.py", "migrate", "-v0"], env)
    tokens = json.loads(
        run([PYTHON, __file__, "--seed"], env, capture_output=True).stdout.strip().splitlines()[-1]
    )
    caches = ("local", "redis") if args.cache == "both" else (args.cache,)
    summaries = {}
    for cache in caches:
        prefix = f"orgenv-bench-{secrets.token_hex(6)}"
        label = f"{name}, {CACHES[cache]}"
        print(f"\n== {label}", flush=True)
        try:
            # The same keys as the seeding: only the cache differs.
            summaries[label] = bench_server(
                {**env, "CACHE_URL": cache_url(cache, prefix)}, tokens, name, args, tmp
            )
        finally:
            if cache == "redis":
                forget_redis_keys(prefix)
    return summaries


def bench_server(
    env: dict[str, str], tokens: dict[str, str], name: str, args: argparse.Namespace, tmp: str
) -> dict:
    port, limit_port = free_port(), free_port()
    server = gunicorn("config.wsgi", env, port)
    limit = None
    url = f"http://127.0.0.1:{port}/api/v1/environment"
    limit_url = f"http://127.0.0.1:{limit_port}/api/v1/environment"
    results: dict[str, list[dict[str, float]]] = {run_: [] for run_ in RUNS}
    try:
        wait_until_up(url, tokens["floor"], server)
        body, content_type, etag = fetch(url, tokens["big"])
        body_file = Path(tmp, f"big-{name}.json")
        body_file.write_bytes(body)
        limit_env = {**env, "BENCH_LIMIT_BODY": str(body_file)}
        limit_env["BENCH_LIMIT_CONTENT_TYPE"] = content_type
        limit = gunicorn("limit_app:application", limit_env, limit_port, "--pythonpath", "bench")
        wait_until_up(limit_url, "", limit)
        runs = {
            "limit": (limit_url, "", ()),
            "floor": (url, tokens["floor"], ()),
            "big": (url, tokens["big"], ()),
            "huge": (url, tokens["huge"], ()),
            "304": (url, tokens["big"], ("-H", f"If-None-Match: {etag}")),
        }
        # Warm-up: every worker decrypts each value once, and imports are done.
        for target, token, headers in runs.values():
            wrk(target, token, *headers, seconds=2, connections=args.connections)
        for round_ in range(1, args.rounds + 1):
            for run_, (target, token, headers) in runs.items():
                result = wrk(
                    target, token, *headers, seconds=args.duration, connections=args.connections
                )
                results[run_].append(result)
                print(
                    f"  round {round_} {run_:5}: {result['rps']:8.1f} req/s, "
                    f"{result['errors']:.0f} errors",
                    flush=True,
                )
    finally:
        for process in (server, limit):
            if process is not None:
                os.killpg(process.pid, signal.SIGTERM)
                process.wait(timeout=30)
    summary = {
        run_: {
            "rps": statistics.median(r["rps"] for r in results[run_]),
            "errors": sum(r["errors"] for r in results[run_]),
        }
        for run_ in RUNS
    }
    summary["ratios"] = {(a, b): summary[a]["rps"] / summary[b]["rps"] for a, b in TARGETS}
    return summary


def report(name: str, summary: dict) -> bool:
    ok = True
    print(f"\n{name}: median req/s over the rounds")
    for run_ in RUNS:
        s = summary[run_]
        print(f"  {run_:5} {s['rps']:8.1f} req/s   non-2xx/errors: {s['errors']:.0f}")
        ok &= s["errors"] == 0
    for (a, b), target in TARGETS.items():
        ratio = summary["ratios"][(a, b)]
        met = ratio >= target
        ok &= met
        verdict = "ok" if met else f"MISSED by {(1 - ratio / target) * 100:.0f} %"
        print(f"  {a}/{b} = {ratio:.2f} (target >= {target}) {verdict}")
    return ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=int, default=10, help="seconds per wrk run")
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--cache", choices=["local", "redis", "both"], default="both")
    parser.add_argument("--seed", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.seed:
        print(json.dumps(seed()))
        return 0
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed (Debian: apt-get install wrk).")

    print(run_context())
    summaries = {}
    with tempfile.TemporaryDirectory(prefix="orgenv-bench-") as tmp:
        if args.database in ("sqlite", "both"):
            # config/settings.py runs every SQLite database in WAL mode with immediate
            # transactions, as behind any web server: the benchmark measures the same set-up.
            url = f"sqlite:///{tmp}/bench.sqlite3"
            summaries.update(bench_database("SQLite", url, args, tmp))
        if args.database in ("postgres", "both"):
            reset_postgres()
            url = f"postgres://postgres@127.0.0.1:5432/{PG_BENCH_DB}"
            summaries.update(bench_database("PostgreSQL", url, args, tmp))
    ok = all([report(name, summary) for name, summary in summaries.items()])
    print("\nTarget met." if ok else "\nTarget MISSED.")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    sys.exit(main())
