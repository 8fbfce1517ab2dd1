from django.apps import AppConfig


class OrgenvConfig(AppConfig):
    name = "orgenv"
    verbose_name = "orgenv"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Importing registers checks, signal receivers (grants, audit) and the audit admin.
        from . import audit_admin, audit_signals, checks, signals  # noqa: F401
