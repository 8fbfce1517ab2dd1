from django.urls import include, path

from orgenv.admin import site as admin_site
from orgenv.operations.health import healthz, readyz
from orgenv.operations.metrics import metrics
from orgenv.views import sign_out

urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("readyz", readyz, name="readyz"),
    path("metrics", metrics, name="metrics"),
    # The organization workspace and the Django admin (orgenv.admin.site).
    path("admin/", admin_site.urls()),
    # Before Django's auth URLs: a GET asks, a POST signs out.
    path("accounts/logout/", sign_out, name="logout"),
    # orgenv's sign-in (password, then the code of a second factor), re-authentication,
    # two-factor enrolment, set-password links, password change; password reset only with
    # EMAIL_URL.
    path("accounts/", include("orgenv.accounts.urls")),
    path("api/", include("orgenv.api.urls")),
    path("", include("orgenv.urls")),
]

handler404 = "orgenv.api.views.not_found"
