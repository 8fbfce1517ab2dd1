"""Benchmark of `rotate_keys`: values re-encrypted per second. Run on demand.

    .venv/bin/python bench/rotate.py [--values 100000] [--database sqlite|postgres|both]

Seeds a fresh database (a SQLite file in a temporary directory; the PostgreSQL database
`orgenv_bench_rotate_<checkout directory>`, dropped and recreated) with `--values` stored
values under one key, half of them variables and half their history rows (simple-history's
table, which rotation covers too), then runs `manage.py rotate_keys` with a new key first in
FERNET_KEYS and reports values per second over the command's run (interpreter start
included). Target: >= 20,000 values/s; exits 1 if missed.
"""

from __future__ import annotations

import argparse
import os
import secrets
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from context import run_context

ROOT = Path(__file__).resolve().parent.parent
TARGET = 20_000
PG_DB = f"orgenv_bench_rotate_{ROOT.name}"


def seed(count: int) -> None:
    """Runs in a child process with Django set up against the bench database."""
    import django

    django.setup()
    from django.utils import timezone

    from orgenv import crypto
    from orgenv.models import Organization, Variable, VariableGroup

    org = Organization.objects.create(slug="bench", name="Bench")
    group = VariableGroup.objects.create(organization=org, name="rotation")
    history = Variable.history.model
    now = timezone.now()
    half = count // 2
    for start in range(0, half, 5000):
        size = min(5000, half - start)
        rows = Variable.objects.bulk_create(
            Variable(group=group, name=f"V{start + i:06}", value=f"value-{start + i}-" + "x" * 24)
            for i in range(size)
        )
        history.objects.bulk_create(
            history(
                id=row.id,
                group_id=group.id,
                name=row.name,
                value=crypto.Ciphertext(crypto.encrypt(f"old-{row.name}")),
                is_secret=False,
                history_date=now,
                history_type="~",
            )
            for row in rows
        )


def run(name: str, database_url: str, count: int) -> float:
    from cryptography.fernet import Fernet

    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "DATABASE_"))}
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings",
        DATABASE_URL=database_url,
        DEBUG="0",
        SECRET_KEY=secrets.token_urlsafe(50),
        FERNET_KEYS=old,
        PYTHONPATH=str(ROOT),
        LOG_LEVEL="WARNING",
    )
    python = sys.executable
    subprocess.run([python, "manage.py", "migrate", "-v0"], env=env, cwd=ROOT, check=True)
    print(f"== {name}: seeding {count:,} values", flush=True)
    subprocess.run([python, __file__, "--seed", str(count)], env=env, cwd=ROOT, check=True)
    env["FERNET_KEYS"] = f"{new},{old}"
    started = time.perf_counter()
    out = subprocess.run(
        [python, "manage.py", "rotate_keys"],
        env=env,
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    seconds = time.perf_counter() - started
    rate = count / seconds
    print(out.strip().splitlines()[-1])
    verdict = "ok" if rate >= TARGET else f"MISSED by {(1 - rate / TARGET) * 100:.0f} %"
    print(f"{name}: {count:,} values in {seconds:.1f} s = {rate:,.0f} values/s ({verdict})")
    return rate


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--values", type=int, default=100_000)
    parser.add_argument("--database", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--seed", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.seed:
        seed(args.seed)
        return 0
    print(run_context())
    rates = []
    with tempfile.TemporaryDirectory(prefix="orgenv-rotate-") as tmp:
        if args.database in ("sqlite", "both"):
            rates.append(run("SQLite", f"sqlite:///{tmp}/rotate.sqlite3", args.values))
        if args.database in ("postgres", "both"):
            import psycopg

            with psycopg.connect(
                "host=127.0.0.1 port=5432 user=postgres dbname=postgres", autocommit=True
            ) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{PG_DB}" WITH (FORCE)')
                conn.execute(f'CREATE DATABASE "{PG_DB}"')
            rates.append(
                run("PostgreSQL", f"postgres://postgres@127.0.0.1:5432/{PG_DB}", args.values)
            )
    return 0 if all(rate >= TARGET for rate in rates) else 1


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    sys.exit(main())
