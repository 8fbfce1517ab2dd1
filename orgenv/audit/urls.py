"""URLs of the audit pages (/orgs/<org>/audit/ …), included by orgenv/urls.py."""

from django.urls import path

from orgenv.audit import views as audit_views

urlpatterns = [
    path("orgs/<slug:org>/audit/", audit_views.audit_log, name="audit"),
    path("orgs/<slug:org>/audit.csv", audit_views.audit_csv, name="audit-csv"),
    path("orgs/<slug:org>/grants/", audit_views.grants, name="grants"),
    path("orgs/<slug:org>/audit/exposure/", audit_views.exposure_view, name="exposure"),
]
