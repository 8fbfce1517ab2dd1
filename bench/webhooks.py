"""Benchmark of webhook delivery on PostgreSQL: events per second from the change to the
receiver's 2xx, with one and with two `db_worker` processes, and what the outbox adds to a
group save. Run on demand; loopback only.

    .venv/bin/python bench/webhooks.py [--events 400]

Creates the PostgreSQL database `orgenv_bench_webhooks_<checkout directory>` (dropped and
recreated) at 127.0.0.1:5432 and a receiver on 127.0.0.1 that answers 200 at once. For one
and then two workers (`manage.py db_worker`, polling every 0.1 s), after a warm-up event, it
makes --events changes one after the other — each a variable of a group saved in its own
transaction, so each one `group.changed` written in that transaction and delivered by a
worker to an endpoint subscribed to it — and reports events per second from the first change
to the last delivery, and the latency from each change's commit to its delivery (p50, p95).

Then the outbox's cost on a group save: the same save (one variable's value, in a
transaction, its after-commit enqueue included) with the event and without it (the receivers
of orgenv.notifications.changes disconnected), its queries and its median time over 300
saves each.
"""

from __future__ import annotations

import argparse
import os
import secrets
import signal
import statistics
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from context import run_context

ROOT = Path(__file__).resolve().parent.parent
PG_DB = f"orgenv_bench_webhooks_{ROOT.name}"
SAVES = 300


class _Handler(BaseHTTPRequestHandler):
    def do_POST(self) -> None:  # noqa: N802
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args: object) -> None:
        pass


def _workers(count: int) -> list[subprocess.Popen]:
    return [
        subprocess.Popen(
            [sys.executable, "manage.py", "db_worker", "--no-reload", "--interval", "0.1"]
            + ["--worker-id", f"bench-{i}"],
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for i in range(count)
    ]


def _stop(workers: list[subprocess.Popen]) -> None:
    for worker in workers:
        worker.send_signal(signal.SIGTERM)
    for worker in workers:
        try:
            worker.wait(30)
        except subprocess.TimeoutExpired:
            worker.kill()


def drive(events: int) -> None:
    """Runs in a child process with Django set up against the bench database."""
    import django

    django.setup()
    from django.db import transaction

    from orgenv.models import (  # noqa: I001 - after django.setup()
        Notification,
        Organization,
        Project,
        Variable,
        VariableGroup,
        WebhookDelivery,
    )
    from orgenv.notifications.endpoints import endpoint_create

    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/hook"

    org = Organization.objects.create(slug="bench", name="Bench")
    project = Project.objects.create(organization=org, slug="api", name="API")
    group = VariableGroup.objects.create(organization=org, name="production")
    group.projects.add(project)
    variable = Variable.objects.create(group=group, name="DB_PASSWORD", value="v0", is_secret=True)
    endpoint_create(organization=org, name="bench", url=url, events=["group.changed"])

    def change(n: int) -> None:
        with transaction.atomic():
            variable.value = f"value-{n}"
            variable.save()

    def delivered() -> int:
        return WebhookDelivery.objects.filter(status="delivered").count()

    def wait_for(count: int, timeout: float = 600) -> None:
        deadline = time.monotonic() + timeout
        while delivered() < count:
            if time.monotonic() > deadline:
                raise SystemExit(f"only {delivered()} of {count} delivered in {timeout:.0f} s")
            time.sleep(0.02)

    for count in (1, 2):
        Notification.objects.all().delete()
        workers = _workers(count)
        try:
            change(-1)  # warm-up: the workers are up once it is delivered
            wait_for(1, timeout=120)
            warm_up = Notification.objects.latest("id").pk
            started = time.perf_counter()
            for n in range(events):
                change(n)
            wait_for(events + 1)
            seconds = time.perf_counter() - started
        finally:
            _stop(workers)
        latencies = sorted(
            (d.delivered_at - d.notification.created_at).total_seconds()
            for d in WebhookDelivery.objects.select_related("notification").exclude(
                notification_id=warm_up
            )
        )
        p50 = statistics.median(latencies)
        p95 = latencies[int(len(latencies) * 0.95) - 1]
        print(
            f"{count} worker{'s' if count > 1 else ''}: {events} events in {seconds:.1f} s = "
            f"{events / seconds:,.0f} events/s; change to delivered p50 {p50 * 1000:.0f} ms, "
            f"p95 {p95 * 1000:.0f} ms",
            flush=True,
        )
    server.shutdown()
    outbox_cost(change)


def outbox_cost(change) -> None:  # noqa: ANN001 - the bench's own save
    from django.db import connection
    from django.db.models.signals import post_save
    from django.test.utils import CaptureQueriesContext

    from orgenv.models import Variable

    def measure(label: str) -> tuple[int, float]:
        with CaptureQueriesContext(connection) as captured:
            change(0)
        times = []
        for n in range(SAVES):
            started = time.perf_counter()
            change(n)
            times.append(time.perf_counter() - started)
        median = statistics.median(times) * 1000
        statements = [q["sql"].split()[0] for q in captured.captured_queries]
        print(f"  {label}: {len(statements)} statements ({' '.join(statements)}), {median:.2f} ms")
        return len(statements), median

    print("group save (one variable, its transaction and after-commit work):", flush=True)
    with_queries, with_time = measure("with its event")
    post_save.disconnect(sender=Variable, dispatch_uid="orgenv_events_variable_saved")
    without_queries, without_time = measure("without")
    print(
        f"outbox cost: +{with_queries - without_queries} statements, "
        f"+{with_time - without_time:.2f} ms per save"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=400)
    parser.add_argument("--drive", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.drive:
        drive(args.events)
        return 0
    print(run_context())
    import psycopg
    from cryptography.fernet import Fernet

    with psycopg.connect(
        "host=127.0.0.1 port=5432 user=postgres dbname=postgres", autocommit=True
    ) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{PG_DB}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{PG_DB}"')
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "DATABASE_"))}
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings",
        DATABASE_URL=f"postgres://postgres@127.0.0.1:5432/{PG_DB}",
        DEBUG="0",
        SECRET_KEY=secrets.token_urlsafe(50),
        FERNET_KEYS=Fernet.generate_key().decode(),
        PYTHONPATH=str(ROOT),
        LOG_LEVEL="WARNING",
        EMAIL_URL="",
        WEBHOOK_ALLOWED_HOSTS="127.0.0.1",
    )
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], env=env, cwd=ROOT, check=True)
    subprocess.run(
        [sys.executable, __file__, "--drive", "--events", str(args.events)],
        env=env,
        cwd=ROOT,
        check=True,
    )
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    sys.exit(main())
