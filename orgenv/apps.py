from django.apps import AppConfig


class OrgenvConfig(AppConfig):
    name = "orgenv"
    verbose_name = "orgenv"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Importing registers checks and signal receivers (grants, audit).
        from . import checks, signals  # noqa: F401
        from .accounts import receivers as account_receivers  # noqa: F401
        from .audit import receivers  # noqa: F401
        from .notifications import changes  # noqa: F401  (group and project events)
        from .operations import metrics  # noqa: F401  (its counters' receivers)

        _without_task_admin()


def _without_task_admin() -> None:
    """No admin pages for django-tasks-db's queue: the admin is the organizations' (every
    page scoped to one), and the queue is the installation's (a worker's log says what
    failed). The admin app's ready() registered it already; orgenv's comes later."""
    from django.contrib import admin
    from django.contrib.admin.exceptions import NotRegistered
    from django_tasks_db.models import DBTaskResult

    try:
        admin.site.unregister(DBTaskResult)
    except NotRegistered:
        pass
