"""Soak test: 60 s of API load while configuration writes, key rotation and pruning run.
On demand only (not in make test); loopback only; bounded by --duration.

    .venv/bin/python bench/soak.py [--database sqlite|postgres|both] [--duration 60]
                                   [--clients 4] [--pg-database orgenv_soak]

For each database it creates a fresh one (a SQLite file in a temporary directory; the
PostgreSQL database --pg-database at 127.0.0.1:5432, dropped and recreated), seeds it with
key K1 — a project reached by a group of 2,000 variables (`big`), two groups that define the
same name with swapping priorities (`c1`, `c2`), a group of 1,000 imported variables, and
100,000 audit events 400 days old — then serves it with gunicorn (2 workers x 2 threads,
127.0.0.1, keys K2,K1) and, for --duration seconds, runs at once:

- --clients threads fetching GET /api/v1/environment in a loop;
- apply_config of the whole file again and again, each version n writing every `big` value
  as v<n>-<i> and swapping the priorities of c1 and c2 (so the winner of WIN changes);
- import_env of the 1,000 variables again and again, each version m as i<m>-<k>;
- rotate_keys once, a fifth of the way in (K1 -> K2 for every row, history included);
- prune_audit once, halfway (the 100,000 old events).

Every response is checked to be a state that existed: all `big` values of one version, the
WIN winner and value of that same version, all imported values of one version. At the end
the database is resolved with K2 alone: every value must be the last version written (no
lost write, none left under K1). It prints requests, failures, torn responses, lost writes,
and latency (p50, p99, max) overall and while an apply was running; exit status 1 when any
failure, torn response or lost write was seen, or p99 during applies was 1 s or more.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
PG_DB = "orgenv_soak"
BIG, IMPORTED = 2000, 1000


# --- seeding (a child process with Django set up against the soak database) ---


def seed() -> str:
    import django

    django.setup()
    from datetime import timedelta

    from django.utils import timezone

    from orgenv.actors import acting_as
    from orgenv.models import AuditEvent, Organization, Project, Variable, VariableGroup
    from orgenv.tokens import token_issue

    with acting_as("system:soak"):
        org = Organization.objects.create(slug="soak", name="Soak")
        app = Project.objects.create(organization=org, slug="app", name="App")
        groups = {
            name: VariableGroup.objects.create(organization=org, name=name, priority=priority)
            for name, priority in (("big", 5), ("c1", 0), ("c2", 1), ("imported", 5))
        }
        for group in groups.values():
            group.projects.add(app)
        Variable.objects.bulk_create(
            Variable(group=groups["big"], name=f"BIG_{i:04}", value=f"v0-{i}", is_secret=i % 2)
            for i in range(BIG)
        )
        Variable.objects.bulk_create(
            Variable(group=groups["imported"], name=f"IMP_{k:04}", value=f"i0-{k}")
            for k in range(IMPORTED)
        )
        Variable.objects.create(group=groups["c1"], name="WIN", value="c1-v0")
        Variable.objects.create(group=groups["c2"], name="WIN", value="c2-v0")
        AuditEvent.objects.bulk_create(
            AuditEvent(kind=AuditEvent.Kind.RESOLUTION, actor="old", organization=org)
            for _ in range(100_000)
        )
        AuditEvent._base_manager.update(at=timezone.now() - timedelta(days=400))
        return token_issue(project=app, name="soak")[1]


# --- what the writers write, and what a reader may see ---


def config_file(directory: Path, n: int) -> Path:
    """Version n of the configuration: every big value, and which of c1/c2 wins WIN."""
    lines = [
        "organizations:",
        "  - slug: soak",
        "    groups:",
        "      - name: big",
        "        variables:",
    ]
    lines += [f"          - {{name: BIG_{i:04}, value: v{n}-{i}}}" for i in range(BIG)]
    for name, priority in (("c1", n % 2), ("c2", 1 - n % 2)):
        lines += [
            f"      - name: {name}",
            f"        priority: {priority}",
            "        variables:",
            f"          - {{name: WIN, value: {name}-v{n}}}",
        ]
    path = directory / f"config-{n}.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


def import_file(directory: Path, m: int) -> Path:
    path = directory / f"import-{m}.env"
    path.write_text("".join(f"IMP_{k:04}=i{m}-{k}\n" for k in range(IMPORTED)))
    return path


def torn(variables: dict[str, str]) -> str | None:
    """Why this environment never existed, or None when it did."""
    versions = {variables[f"BIG_{i:04}"].split("-")[0] for i in range(BIG)}
    if len(versions) != 1:
        return f"big values of {len(versions)} versions"
    n = int(versions.pop()[1:])
    winner = "c1" if n % 2 else "c2"
    if variables["WIN"] != f"{winner}-v{n}":
        return f"WIN={variables['WIN']!r} beside big version {n}"
    imported = {variables[f"IMP_{k:04}"].split("-")[0] for k in range(IMPORTED)}
    if len(imported) != 1:
        return f"imported values of {len(imported)} versions"
    return None


# --- orchestration ---


class Load:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.samples: list[tuple[float, float]] = []  # (start, seconds)
        self.failures: list[str] = []
        self.torn: list[str] = []
        self.applies: list[tuple[float, float]] = []
        self.commands: list[str] = []


def client(url: str, token: str, load: Load, stop: threading.Event) -> None:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
    while not stop.is_set():
        started = time.monotonic()
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                body = json.loads(response.read())
            why = torn(body["variables"])
            problem = None
        except urllib.error.HTTPError as error:
            why, problem = None, f"{error.code} {error.read()[:200]!r}"
        except Exception as error:  # noqa: BLE001 - every failure is counted and shown
            why, problem = None, f"{type(error).__name__}: {error}"
        with load.lock:
            load.samples.append((started, time.monotonic() - started))
            if problem:
                load.failures.append(problem)
            if why:
                load.torn.append(why)


def command(env: dict[str, str], load: Load, *args: str) -> tuple[float, float]:
    started = time.monotonic()
    result = subprocess.run(
        [PYTHON, "manage.py", *args], env=env, cwd=ROOT, capture_output=True, text=True
    )
    ended = time.monotonic()
    with load.lock:
        load.commands.append(
            f"{args[0]}: {'ok' if result.returncode == 0 else 'FAILED'} in {ended - started:.1f} s"
            + ("" if result.returncode == 0 else f": {result.stderr.strip()[-300:]}")
        )
    if result.returncode != 0:
        raise RuntimeError(f"{args[0]} failed")
    return started, ended


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def environment(database_url: str, keys: list[str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "DATABASE_"))}
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings",
        DATABASE_URL=database_url,
        DEBUG="0",
        SECRET_KEY="soak-only-" + "s" * 50,
        FERNET_KEYS=",".join(keys),
        ALLOWED_HOSTS="127.0.0.1",
        CACHE_URL="locmemcache://soak",
        THROTTLE_TOKEN_RATE="100000000/s",
        LOG_LEVEL="WARNING",
        PYTHONPATH=str(ROOT),
    )
    return env


def percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def soak(name: str, database_url: str, args: argparse.Namespace, workdir: Path) -> bool:
    from cryptography.fernet import Fernet

    k1, k2 = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    old, new = environment(database_url, [k1]), environment(database_url, [k2, k1])
    print(f"\n== {name}: migrating and seeding", flush=True)
    subprocess.run([PYTHON, "manage.py", "migrate", "-v0"], env=old, cwd=ROOT, check=True)
    token = subprocess.run(
        [PYTHON, __file__, "--seed"], env=old, cwd=ROOT, check=True, capture_output=True, text=True
    ).stdout.split()[-1]
    port = free_port()
    server = subprocess.Popen(
        [str(Path(PYTHON).with_name("gunicorn")), "config.wsgi", "--workers", "2",
         "--threads", "2", "--bind", f"127.0.0.1:{port}", "--log-level", "warning"],
        env=new, cwd=ROOT, start_new_session=True,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}/api/v1/environment"
    load, stop = Load(), threading.Event()
    last = {"apply": 0, "import": 0}
    try:
        for _ in range(150):
            try:
                urllib.request.urlopen(
                    urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"}),
                    timeout=5,
                ).read()
                break
            except OSError:
                time.sleep(0.2)
        for _ in range(2):  # both workers decrypt once, and record their key ring
            urllib.request.urlopen(
                urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
            ).read()

        def applies() -> None:
            n = 1
            while not stop.is_set():
                window = command(new, load, "apply_config", str(config_file(workdir, n)))
                load.applies.append(window)
                last["apply"] = n
                n += 1

        def imports() -> None:
            m = 1
            while not stop.is_set():
                command(new, load, "import_env", "soak/imported", str(import_file(workdir, m)))
                last["import"] = m
                m += 1
                stop.wait(2)

        def once(delay: float, *args: str) -> None:
            if not stop.wait(delay):
                command(new, load, *args)

        threads = [threading.Thread(target=client, args=(url, token, load, stop))
                   for _ in range(args.clients)]  # fmt: skip
        threads += [
            threading.Thread(target=applies),
            threading.Thread(target=imports),
            threading.Thread(target=once, args=(args.duration / 5, "rotate_keys")),
            threading.Thread(target=once, args=(args.duration / 2, "prune_audit", "--days", "30")),
        ]
        print(f"   {args.duration:.0f} s of load with {args.clients} clients...", flush=True)
        for thread in threads:
            thread.start()
        time.sleep(args.duration)
        stop.set()
        for thread in threads:
            thread.join()
    finally:
        server.terminate()
        server.wait(30)

    # Lost writes: resolve with the new key alone; everything must be the last version.
    final = subprocess.run(
        [PYTHON, "manage.py", "resolve_env", "soak/app", "--format", "json"],
        env=environment(database_url, [k2]), cwd=ROOT, capture_output=True, text=True,
    )  # fmt: skip
    lost = 0
    if final.returncode != 0:
        lost = -1
        print(f"   final resolution with K2 alone FAILED: {final.stderr.strip()[-300:]}")
    else:
        got = json.loads(final.stdout)["variables"]
        n, m = last["apply"], last["import"]
        lost += sum(got[f"BIG_{i:04}"] != f"v{n}-{i}" for i in range(BIG))
        lost += got["WIN"] != (f"c1-v{n}" if n % 2 else f"c2-v{n}")
        lost += sum(got[f"IMP_{k:04}"] != f"i{m}-{k}" for k in range(IMPORTED))

    during = [
        seconds
        for started, seconds in load.samples
        if any(a <= started <= b for a, b in load.applies)
    ]
    latencies = [seconds for _, seconds in load.samples]
    for line in load.commands:
        if "FAILED" in line or not line.startswith("apply_config"):
            print(f"   {line}")
    apply_times = [b - a for a, b in load.applies]
    print(
        f"   {len(load.applies)} applies of {BIG} variables "
        f"(median {statistics.median(apply_times) if apply_times else 0:.1f} s), "
        f"{last['import']} imports of {IMPORTED}"
    )
    print(f"   requests: {len(latencies)}, failed: {len(load.failures)}, torn: {len(load.torn)}, "
          f"lost writes: {lost}")  # fmt: skip
    print(
        f"   latency all: p50 {percentile(latencies, 0.5) * 1000:.0f} ms, "
        f"p99 {percentile(latencies, 0.99) * 1000:.0f} ms, max {max(latencies) * 1000:.0f} ms"
    )
    print(
        f"   during applies ({len(during)} requests): p50 {percentile(during, 0.5) * 1000:.0f} ms,"
        f" p99 {percentile(during, 0.99) * 1000:.0f} ms, max {max(during or [0]) * 1000:.0f} ms"
    )
    for problem in (load.failures + load.torn)[:5]:
        print(f"   e.g. {problem}")
    return not load.failures and not load.torn and lost == 0 and percentile(during, 0.99) < 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--duration", type=float, default=60)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument(
        "--pg-database",
        default=PG_DB,
        help=f"PostgreSQL database to drop and recreate (default {PG_DB})",
    )
    parser.add_argument("--seed", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.seed:
        print(seed())
        return
    if not 5 <= args.duration <= 600:
        raise SystemExit("--duration must be between 5 and 600 seconds.")
    ok = True
    with tempfile.TemporaryDirectory(prefix="orgenv-soak-") as tmp:
        workdir = Path(tmp)
        if args.database in ("sqlite", "both"):
            ok &= soak("SQLite", f"sqlite:///{workdir / 'soak.sqlite3'}", args, workdir)
        if args.database in ("postgres", "both"):
            import psycopg

            with psycopg.connect(
                "host=127.0.0.1 port=5432 user=postgres dbname=postgres", autocommit=True
            ) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{args.pg_database}" WITH (FORCE)')
                conn.execute(f'CREATE DATABASE "{args.pg_database}"')
            url = f"postgres://postgres@127.0.0.1:5432/{args.pg_database}"
            ok &= soak("PostgreSQL", url, args, workdir)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
