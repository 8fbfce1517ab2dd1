from django.urls import path

from . import views
from .audit_urls import urlpatterns as audit_urlpatterns

urlpatterns = [
    path("", views.home, name="home"),
    *audit_urlpatterns,
]
