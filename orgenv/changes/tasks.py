"""The periodic task that closes open change requests past their 7 days (setting
ORGENV_PERIODIC_TASKS) and mails their authors. Until it runs, such a request already reads
expired and can no longer be approved (ChangeRequest.is_open)."""

from __future__ import annotations

from django_tasks import task

from .services import expire_due


@task()
def expire() -> int:
    return expire_due()
