from django.apps import AppConfig


class OrgenvConfig(AppConfig):
    name = "orgenv"
    verbose_name = "orgenv"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from . import checks, signals  # noqa: F401  (registers checks and receivers)
        from . import audit_admin, audit_signals  # noqa: F401  (audit receivers, admin)
