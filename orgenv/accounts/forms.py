from __future__ import annotations

from typing import Any

from django import forms
from django.contrib.auth import authenticate
from django.http import HttpRequest

CODE_HELP = "The 6-digit code of your authenticator app, or one of your backup codes."


def match_code(user: Any, code: str) -> Any:
    """The device (TOTP, or the backup codes) that accepts this code, or None. django-otp
    throttles each device after failures, and a backup code works once."""
    from django_otp import match_token

    return match_token(user, code.replace(" ", "")) if code.strip() else None


class ReauthForm(forms.Form):
    """The signed-in user's password again, and their code when they have a device."""

    password = forms.CharField(
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password", "autofocus": True})
    )
    code = forms.CharField(
        label="Authentication code",
        required=False,
        max_length=16,
        help_text=CODE_HELP,
        widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "inputmode": "numeric"}),
    )

    def __init__(self, request: HttpRequest, *, needs_code: bool, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.request = request
        self.needs_code = needs_code
        self.device = None
        if needs_code:
            self.fields["code"].required = True
        else:
            del self.fields["code"]

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        user = self.request.user
        password = cleaned.get("password")
        if password is not None:
            # authenticate(), not check_password(): failures count towards the lockout
            # (django-axes) and are recorded as failed sign-ins.
            again = authenticate(self.request, username=user.get_username(), password=password)
            if again is None or again.pk != user.pk:
                self.add_error("password", "This is not your password: type it again.")
        code = cleaned.get("code")
        if self.needs_code and code and not self.errors:
            self.device = match_code(user, code)
            if self.device is None:
                self.add_error("code", "This code is wrong or expired: type the current one.")
        return cleaned


class CodeForm(forms.Form):
    code = forms.CharField(
        label="Authentication code",
        max_length=16,
        help_text=CODE_HELP,
        widget=forms.TextInput(
            attrs={"autocomplete": "one-time-code", "inputmode": "numeric", "autofocus": True}
        ),
    )
