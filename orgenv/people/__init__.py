"""Who belongs to an organization (SPEC "People"): invitations, roles, removal, unlock and
accounts created by an org admin. Writes in services, reads in selectors, the admin page in
views; every write is an audit event."""
