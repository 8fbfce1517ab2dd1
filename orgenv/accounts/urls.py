"""/accounts/… pages of orgenv, included before Django's own auth URLs."""

from django.conf import settings
from django.contrib.auth import views as auth_views
from django.urls import path, reverse_lazy

from . import two_factor, views

urlpatterns = [
    path("login/", two_factor.SignInView.as_view(), name="login"),
    path("login/code/", two_factor.login_code, name="login-code"),
    path("two-factor/", two_factor.two_factor, name="two-factor"),
    path("two-factor/qr.svg", two_factor.two_factor_qr, name="two-factor-qr"),
    path("reauth/", views.reauth, name="reauth"),
    path("password_change/", auth_views.PasswordChangeView.as_view(), name="password_change"),
    path(
        "password_change/done/",
        auth_views.PasswordChangeDoneView.as_view(),
        name="password_change_done",
    ),
    # The link an org admin hands to the owner of an account they created (orgenv.people):
    # Django's token generator, so it works once and expires (PASSWORD_RESET_TIMEOUT).
    path(
        "set-password/<uidb64>/<token>/",
        auth_views.PasswordResetConfirmView.as_view(
            template_name="registration/set_password.html",
            success_url=reverse_lazy("set-password-done"),
        ),
        name="set-password",
    ),
    path(
        "set-password/done/",
        auth_views.PasswordResetCompleteView.as_view(
            template_name="registration/set_password_done.html"
        ),
        name="set-password-done",
    ),
]

if settings.EMAIL_URL:
    urlpatterns += [
        path("password_reset/", views.password_reset, name="password_reset"),
        path(
            "password_reset/done/",
            auth_views.PasswordResetDoneView.as_view(),
            name="password_reset_done",
        ),
        path(
            "reset/<uidb64>/<token>/",
            auth_views.PasswordResetConfirmView.as_view(),
            name="password_reset_confirm",
        ),
        path(
            "reset/done/",
            auth_views.PasswordResetCompleteView.as_view(),
            name="password_reset_complete",
        ),
    ]
