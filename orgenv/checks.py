from __future__ import annotations

from django.conf import settings
from django.core.checks import Error, Tags, register

from .crypto import validate_keys


@register(Tags.security)
def check_fernet_keys(app_configs: object = None, **kwargs: object) -> list[Error]:
    return [
        Error(
            problem,
            hint="Generate a key with: python -c 'from cryptography.fernet import Fernet; "
            "print(Fernet.generate_key().decode())'",
            id="orgenv.E001",
        )
        for problem in validate_keys(list(getattr(settings, "FERNET_KEYS", [])))
    ]
