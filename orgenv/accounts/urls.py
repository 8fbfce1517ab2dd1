"""/accounts/… pages of orgenv, included before Django's own auth URLs."""

from django.urls import path

from . import views

urlpatterns = [
    path("reauth/", views.reauth, name="reauth"),
]
