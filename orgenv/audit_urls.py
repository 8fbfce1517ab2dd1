"""URLs of the audit pages (/orgs/<org>/audit/ …)."""

urlpatterns: list = []
