"""Account pages: re-authentication before a reveal."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
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
