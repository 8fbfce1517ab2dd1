"""Account pages: re-authentication before a reveal, and the rate-limited password reset."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.core.cache import cache
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.cache import never_cache

from .forms import ReauthForm
from .freshness import has_second_factor, mark_password, mark_second_factor


def safe_next(request: HttpRequest, default: str = "/") -> str:
    target = request.POST.get("next") or request.GET.get("next") or ""
    if url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return default


@never_cache
@login_required
def reauth(request: HttpRequest) -> HttpResponse:
    """Confirm the password (and the code, with a device) of the signed-in user."""
    needs_code = has_second_factor(request.user)
    form = ReauthForm(request, needs_code=needs_code, data=request.POST or None)
    if request.method == "POST" and form.is_valid():
        mark_password(request)
        if form.device is not None:
            from django_otp import login as otp_login

            otp_login(request, form.device)
            mark_second_factor(request)
        return redirect(safe_next(request))
    context = {"form": form, "next": safe_next(request, ""), "needs_code": needs_code}
    return render(request, "registration/reauth.html", context)


_RESET_WINDOW = 3600


def _over_reset_rate(key: str) -> bool:
    """Count one request under `key` in the shared cache; True once over the hourly rate."""
    cache.add(key, 0, _RESET_WINDOW)
    try:
        count = cache.incr(key)
    except ValueError:  # expired between add and incr
        cache.set(key, 1, _RESET_WINDOW)
        count = 1
    return count > settings.PASSWORD_RESET_RATE


@never_cache
def password_reset(request: HttpRequest) -> HttpResponse:
    """Django's password reset (only routed when EMAIL_URL is set), with at most
    PASSWORD_RESET_RATE requests an hour per client address and per e-mail address: each
    one sends a mail, so an unthrottled form is a way to flood someone's inbox."""
    if request.method == "POST":
        from orgenv.audit.events import client_address

        email = request.POST.get("email", "").strip().lower()[:254]
        keys = [f"orgenv:reset:ip:{client_address(request) or 'unknown'}"]
        if email:
            keys.append(f"orgenv:reset:email:{email}")
        if any([_over_reset_rate(key) for key in keys]):
            return render(request, "registration/password_reset_throttled.html", status=429)
    return auth_views.PasswordResetView.as_view()(request)
