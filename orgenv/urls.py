from django.urls import path

from . import views
from .audit_urls import urlpatterns as audit_urlpatterns

urlpatterns = [
    path("", views.home, name="home"),
    path(
        "orgs/<slug:org>/projects/<slug:project>/environment/",
        views.environment,
        name="environment",
    ),
    *audit_urlpatterns,
]
