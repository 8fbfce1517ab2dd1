from django.urls import path

from orgenv.audit.urls import urlpatterns as audit_urlpatterns

from . import views

urlpatterns = [
    path("", views.home, name="home"),
    path(
        "orgs/<slug:org>/projects/<slug:project>/environment/",
        views.environment,
        name="environment",
    ),
    *audit_urlpatterns,
]
