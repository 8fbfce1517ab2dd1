"""Audit events written by services during a signed-in request name that user."""

from __future__ import annotations

from orgenv.models import AuditEvent, ProjectToken


def test_a_token_issued_and_revoked_in_the_admin_is_attributed_to_the_admin(client, world):
    client.force_login(world.alice)
    response = client.post(
        "/admin/orgenv/projecttoken/add/",
        {"project": world.web.pk, "name": "deploy", "days": "", "expires_at": ""},
    )
    assert response.status_code == 200, response.content[:500]
    token = ProjectToken.objects.get(project=world.web, name="deploy")
    client.post(
        "/admin/orgenv/projecttoken/",
        {"action": "revoke", "_selected_action": [token.pk], "post": "yes"},
    )
    issued = AuditEvent.objects.get(kind=AuditEvent.Kind.TOKEN_ISSUED)
    revoked = AuditEvent.objects.get(kind=AuditEvent.Kind.TOKEN_REVOKED)
    assert (issued.actor, issued.user) == ("alice", world.alice)
    assert (revoked.actor, revoked.user) == ("alice", world.alice)
    assert issued.address == "127.0.0.1"
