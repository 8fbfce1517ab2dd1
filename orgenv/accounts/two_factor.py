"""Two-factor sign-in (TOTP, with backup codes) through django-otp: optional per user, and
required of the admins of an organization that says so (Organization.require_admin_two_factor).

- signing in: a user with a confirmed device gives the password, then a code (`login_code`);
  only then are they signed in, so a stolen password alone opens nothing;
- enrolling (`two_factor`): a QR code of the otpauth URL, or the secret to type, then a code to
  confirm; ten backup codes are shown once, each works once;
- the admin: an admin an organization requires it of, without a device, is sent to enrol
  first (TwoFactorMiddleware); a session that has not passed the code of an enrolled user is
  sent to confirm it.
"""

from __future__ import annotations

import io
import time
from base64 import b32encode
from typing import Any

from django.contrib import messages
from django.contrib.auth import get_user_model, login, user_login_failed
from django.contrib.auth.decorators import login_required
from django.contrib.auth.views import LoginView
from django.db import transaction
from django.http import HttpRequest, HttpResponse, HttpResponseNotFound
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import urlencode
from django.views.decorators.cache import never_cache

from orgenv.audit.receivers import record_sign_in
from orgenv.models import AuditEvent, Membership

from .forms import CodeForm, match_code
from .freshness import has_second_factor, mark_password, mark_second_factor
from .views import safe_next

PENDING_USER = "orgenv_pending_user"
PENDING_BACKEND = "orgenv_pending_backend"
PENDING_AT = "orgenv_pending_at"
# Between the password and the code: long enough to open an app, short enough to be stale.
PENDING_SECONDS = 300
BACKUP_CODES = 10


def required_of(user: Any) -> list[str]:
    """Slugs of the organizations that require a second factor of this user, as their admin."""
    if not getattr(user, "is_authenticated", False) or not user.is_staff:
        return []
    return list(
        Membership.objects.filter(
            user=user,
            role=Membership.Role.ADMIN,
            organization__require_admin_two_factor=True,
        )
        .order_by("organization__slug")
        .values_list("organization__slug", flat=True)
    )


class SignInView(LoginView):
    """Django's sign-in, which stops half-way for a user with a device: the password was
    right, the code comes next, and nobody is signed in until it does."""

    def form_valid(self, form: Any) -> HttpResponse:
        user = form.get_user()
        if not has_second_factor(user):
            return super().form_valid(form)
        self.request.session[PENDING_USER] = user.pk
        self.request.session[PENDING_BACKEND] = user.backend
        self.request.session[PENDING_AT] = time.time()
        query = urlencode({"next": self.get_redirect_url() or ""})
        return redirect(f"{reverse('login-code')}?{query}")


def _pending_user(request: HttpRequest) -> Any:
    at = request.session.get(PENDING_AT)
    if not isinstance(at, int | float) or time.time() - at > PENDING_SECONDS:
        return None
    pk = request.session.get(PENDING_USER)
    return get_user_model()._default_manager.filter(pk=pk, is_active=True).first()


@never_cache
def login_code(request: HttpRequest) -> HttpResponse:
    user = _pending_user(request)
    if user is None:
        messages.info(request, "Sign in with your password first.")
        return redirect("login")
    form = CodeForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        device = match_code(user, form.cleaned_data["code"])
        if device is None:
            # Counted like a wrong password: django-axes locks the account out after
            # AXES_FAILURE_LIMIT, and the audit log records the failure.
            user_login_failed.send(
                sender=__name__,
                credentials={"username": user.get_username()},
                request=request,
            )
            form.add_error("code", "This code is wrong or expired: type the current one.")
        else:
            user.backend = request.session[PENDING_BACKEND]
            for key in (PENDING_USER, PENDING_BACKEND, PENDING_AT):
                request.session.pop(key, None)
            login(request, user)
            from django_otp import login as otp_login

            otp_login(request, device)
            mark_password(request)
            mark_second_factor(request)
            return redirect(safe_next(request, reverse("home")))
    context = {"form": form, "next": safe_next(request, ""), "pending": user}
    return render(request, "registration/login_code.html", context)


def _totp_devices(user: Any) -> Any:
    from django_otp.plugins.otp_totp.models import TOTPDevice

    return TOTPDevice.objects.filter(user=user)


def _unconfirmed_device(user: Any) -> Any:
    """The device being enrolled: the same one across reloads, so the QR code stays valid."""
    device = _totp_devices(user).filter(confirmed=False).order_by("pk").first()
    if device is None:
        device = _totp_devices(user).model.objects.create(
            user=user, name="authenticator app", confirmed=False
        )
    return device


def _new_backup_codes(user: Any) -> list[str]:
    from django_otp.plugins.otp_static.models import StaticDevice, StaticToken

    StaticDevice.objects.filter(user=user).delete()
    device = StaticDevice.objects.create(user=user, name="backup codes", confirmed=True)
    codes = [StaticToken.random_token() for _ in range(BACKUP_CODES)]
    StaticToken.objects.bulk_create([StaticToken(device=device, token=c) for c in codes])
    return codes


def _spaced(secret: bytes) -> str:
    text = b32encode(secret).decode()
    return " ".join(text[i : i + 4] for i in range(0, len(text), 4))


@never_cache
@login_required
def two_factor(request: HttpRequest) -> HttpResponse:
    """Enrol, see the state, renew backup codes, or turn two-factor sign-in off."""
    user = request.user
    enrolled = has_second_factor(user)
    required = required_of(user)
    form = CodeForm(request.POST or None)
    action = request.POST.get("action", "")
    backup_codes: list[str] = []
    if request.method == "POST" and form.is_valid():
        code = form.cleaned_data["code"]
        if not enrolled and action == "enable":
            device = _unconfirmed_device(user)
            if device.verify_token(code.replace(" ", "")):
                with transaction.atomic():
                    device.confirmed = True
                    device.save(update_fields=["confirmed"])
                    backup_codes = _new_backup_codes(user)
                    record_sign_in(
                        AuditEvent.Kind.TWO_FACTOR_ENABLED,
                        actor=user.get_username(),
                        user=user,
                        request=request,
                    )
                from django_otp import login as otp_login

                otp_login(request, device)
                mark_second_factor(request)
                enrolled = True
                form = CodeForm()
            else:
                form.add_error("code", "This code is wrong or expired: type the current one.")
        elif enrolled and action in ("backup", "disable"):
            if match_code(user, code) is None:
                form.add_error("code", "This code is wrong or expired: type the current one.")
            elif action == "backup":
                backup_codes = _new_backup_codes(user)
                form = CodeForm()
            elif required:
                form.add_error(
                    None,
                    f"{', '.join(required)} requires two-factor sign-in of its admins: it "
                    "cannot be turned off while you administer it.",
                )
            else:
                from django_otp.plugins.otp_static.models import StaticDevice

                with transaction.atomic():
                    _totp_devices(user).delete()
                    StaticDevice.objects.filter(user=user).delete()
                    record_sign_in(
                        AuditEvent.Kind.TWO_FACTOR_DISABLED,
                        actor=user.get_username(),
                        user=user,
                        request=request,
                    )
                messages.success(request, "Two-factor sign-in is off.")
                return redirect("two-factor")
    context: dict[str, Any] = {
        "form": form,
        "enrolled": enrolled,
        "required": required,
        "backup_codes": backup_codes,
        "next": safe_next(request, ""),
    }
    if enrolled:
        from django_otp.plugins.otp_static.models import StaticToken

        context["backup_left"] = StaticToken.objects.filter(device__user=user).count()
    else:
        device = _unconfirmed_device(user)
        context["secret"] = _spaced(device.bin_key)
    status = 400 if request.method == "POST" and form.errors else 200
    return render(request, "registration/two_factor.html", context, status=status)


@never_cache
@login_required
def two_factor_qr(request: HttpRequest) -> HttpResponse:
    """The QR code of the device being enrolled, as SVG (a file, not inline: CSP)."""
    if has_second_factor(request.user):
        return HttpResponseNotFound("Two-factor sign-in is already set up.")
    import segno

    out = io.BytesIO()
    segno.make(_unconfirmed_device(request.user).config_url, error="m").save(
        out, kind="svg", scale=5, border=2
    )
    return HttpResponse(out.getvalue(), content_type="image/svg+xml")


class TwoFactorMiddleware:
    """Before the admin: an admin an organization requires a second factor of, without a
    device, enrols first; an enrolled user whose session has not passed a code confirms one
    (the re-authentication page asks for it)."""

    def __init__(self, get_response: Any) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        # The path first: touching request.user loads the session, which other pages (the
        # API's 503 when the database is down) must be free not to do.
        if not request.path.startswith(reverse("admin:index")):
            return self.get_response(request)
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated and user.is_staff:
            if has_second_factor(user):
                if not user.is_verified():
                    query = urlencode({"next": request.get_full_path()})
                    return redirect(f"{reverse('reauth')}?{query}")
            else:
                required = required_of(user)
                if required:
                    messages.warning(
                        request,
                        f"{', '.join(required)} requires two-factor sign-in of its admins: "
                        "set up an authenticator app to continue to the admin.",
                    )
                    query = urlencode({"next": request.get_full_path()})
                    return redirect(f"{reverse('two-factor')}?{query}")
        return self.get_response(request)
