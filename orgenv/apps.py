from django.apps import AppConfig


class OrgenvConfig(AppConfig):
    name = "orgenv"
    verbose_name = "orgenv"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Importing registers checks, signal receivers (grants, audit) and the audit admin.
        from . import checks, signals  # noqa: F401
        from .accounts import receivers as account_receivers  # noqa: F401
        from .admin import audit  # noqa: F401
        from .audit import receivers  # noqa: F401
        from .operations import metrics  # noqa: F401  (its counters' receivers)
