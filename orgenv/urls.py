from django.urls import path

from orgenv.audit.urls import urlpatterns as audit_urlpatterns

from . import views
from .hygiene import views as hygiene_views
from .people import views as people_views

urlpatterns = [
    path("", views.home, name="home"),
    path(
        "orgs/<slug:org>/projects/<slug:project>/environment/",
        views.environment,
        name="environment",
    ),
    path("orgs/<slug:org>/hygiene/", hygiene_views.hygiene, name="hygiene"),
    path(
        "invitations/<int:pk>/accept/",
        people_views.accept_invitation,
        name="invitation-accept",
    ),
    path(
        "invitations/<int:pk>/decline/",
        people_views.decline_invitation,
        name="invitation-decline",
    ),
    *audit_urlpatterns,
]
