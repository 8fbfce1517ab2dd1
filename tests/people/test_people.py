"""People (SPEC "People"): invitations without an existence oracle, Accept / Decline on `/`,
role changes, removal, unlock, accounts created with a one-time link; each an audit event."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth.models import User
from django.test import Client

from orgenv.models import AuditEvent, Invitation, Membership, Team

PEOPLE = "/admin/orgs/acme/people/"


@pytest.fixture
def admin_client(world) -> Client:
    client = Client()
    client.force_login(world.alice)
    return client


def invite(client: Client, username: str, role: str = "member"):
    return client.post(
        PEOPLE, {"action": "invite", "invite-username": username, "invite-role": role}, follow=True
    )


def messages_of(response) -> list[str]:
    return [str(m) for m in response.context["messages"]]


def page_without(response, username: str) -> str:
    """The page with the username, the CSRF token (different per request) and the list of
    pending invitations (one longer the second time) taken out."""
    html = response.content.decode().replace(username, "X")
    html = re.sub(r'<table id="invitations">.*?</table>', "", html, flags=re.S)
    return re.sub(r'name="csrfmiddlewaretoken" value="[^"]+"', "", html)


def test_the_people_page_has_its_admin_url_name(world):
    from django.urls import reverse

    assert reverse("admin:orgenv_people", kwargs={"org_slug": "acme"}) == PEOPLE


def test_the_page_lists_members_with_role_and_pending_invitations(world, admin_client):
    Invitation.objects.create(organization=world.acme, username="zed", invited_by=world.alice)
    page = admin_client.get(PEOPLE)
    assert page.status_code == 200
    html = page.content.decode()
    assert 'id="member-alice"' in html and 'id="member-bob"' in html
    assert "charlie" not in html  # globex's admin
    assert "zed" in html


@pytest.mark.parametrize("who", ["bob", "charlie", "staff_without_membership"])
def test_anyone_but_an_admin_of_the_organization_gets_404_or_the_admin_login(world, who):
    client = Client()
    if who == "staff_without_membership":
        user = User.objects.create_user("stan", password="x", is_staff=True)
    else:
        user = getattr(world, who)
    client.force_login(user)
    response = client.get(PEOPLE)
    if user.is_staff:
        assert response.status_code == 404
    else:  # the admin site sends non-staff users to its sign-in
        assert response.status_code == 302 and "/admin/login/" in response["Location"]
    before = Invitation.objects.count()
    client.post(PEOPLE, {"action": "invite", "invite-username": "bob", "invite-role": "admin"})
    assert Invitation.objects.count() == before


def test_inviting_an_existing_and_a_missing_username_gives_the_same_answer(world, admin_client):
    User.objects.create_user("dora", password="x")
    existing = invite(admin_client, "dora")
    missing = invite(admin_client, "nobody-here")
    assert existing.status_code == missing.status_code == 200
    said = [m.replace("dora", "X") for m in messages_of(existing)]
    assert said == [m.replace("nobody-here", "X") for m in messages_of(missing)]
    assert page_without(existing, "dora") == page_without(missing, "nobody-here")
    assert set(Invitation.objects.values_list("username", flat=True)) == {"dora", "nobody-here"}
    assert not Membership.objects.filter(user__username="dora").exists()
    events = AuditEvent.objects.filter(kind="invitation_sent").order_by("id")
    assert [e.detail for e in events] == [
        {"username": "dora", "role": "member"},
        {"username": "nobody-here", "role": "member"},
    ]
    assert events[0].actor == "alice" and events[0].organization == world.acme


def test_the_membership_form_no_longer_attaches_an_existing_user(world, admin_client):
    """The organization page's membership rows are read-only for an org admin."""
    User.objects.create_user("dora", password="x")
    page = admin_client.get(f"/admin/orgenv/organization/{world.acme.pk}/change/")
    assert page.status_code == 200
    assert "There is no user named" not in page.content.decode()
    data = {
        "slug": "acme",
        "name": "Acme ML",
        "memberships-TOTAL_FORMS": "1",
        "memberships-INITIAL_FORMS": "0",
        "memberships-MIN_NUM_FORMS": "0",
        "memberships-MAX_NUM_FORMS": "1000",
        "memberships-0-user": "dora",
        "memberships-0-role": "admin",
    }
    admin_client.post(f"/admin/orgenv/organization/{world.acme.pk}/change/", data)
    assert not Membership.objects.filter(user__username="dora").exists()


def test_a_bad_username_is_refused_naming_the_field(world, admin_client):
    response = admin_client.post(
        PEOPLE, {"action": "invite", "invite-username": "has space", "invite-role": "member"}
    )
    assert response.status_code == 400
    assert "Username: letters, digits" in response.content.decode()
    assert not Invitation.objects.exists()


def test_accepting_creates_the_membership_and_declining_leaves_none(world, admin_client):
    dora = User.objects.create_user("dora", password="dora-password")
    erin = User.objects.create_user("erin", password="erin-password")
    invite(admin_client, "dora", role="admin")
    invite(admin_client, "erin")
    dora_client, erin_client = Client(), Client()
    dora_client.force_login(dora)
    erin_client.force_login(erin)

    home = dora_client.get("/")
    assert "Acme ML" in home.content.decode() and "invites you as" in home.content.decode()
    mine = Invitation.objects.get(username="dora")
    # Someone else cannot answer dora's invitation.
    assert erin_client.post(f"/invitations/{mine.pk}/accept/").status_code == 404
    accepted = dora_client.post(f"/invitations/{mine.pk}/accept/", follow=True)
    assert "You joined Acme ML as admin." in messages_of(accepted)
    membership = Membership.objects.get(user=dora, organization=world.acme)
    assert membership.role == "admin"
    dora.refresh_from_db()
    assert dora.is_staff  # the admin role needs it (orgenv.access)

    theirs = Invitation.objects.get(username="erin")
    erin_client.post(f"/invitations/{theirs.pk}/decline/")
    assert not Membership.objects.filter(user=erin).exists()
    assert Invitation.objects.get(pk=theirs.pk).status == "declined"
    assert dora_client.post(f"/invitations/{mine.pk}/accept/").status_code == 404  # once
    kinds = list(
        AuditEvent.objects.filter(kind__startswith="invitation_").values_list("kind", "actor")
    )
    assert ("invitation_accepted", "dora") in kinds and ("invitation_declined", "erin") in kinds


def test_accept_and_decline_are_posts(world):
    dora = User.objects.create_user("dora", password="x")
    invitation = Invitation.objects.create(organization=world.acme, username="dora")
    client = Client()
    client.force_login(dora)
    assert client.get(f"/invitations/{invitation.pk}/accept/").status_code == 405


def test_sign_ins_before_acceptance_and_after_leaving_never_show_in_the_log(world, admin_client):
    dora = User.objects.create_user("dora", password="dora-password")
    dora_client = Client()

    def sign_in() -> None:
        dora_client.post("/accounts/login/", {"username": "dora", "password": "dora-password"})

    sign_in()  # not a member yet
    dora_client.post("/accounts/login/", {"username": "dora", "password": "wrong"})
    invite(admin_client, "dora")
    invitation = Invitation.objects.get(username="dora")
    dora_client.post(f"/invitations/{invitation.pk}/accept/")
    sign_in()  # a member: shown
    membership = Membership.objects.get(user=dora)
    admin_client.post(PEOPLE, {"action": "remove", "membership": membership.pk})
    sign_in()  # gone again

    log = admin_client.get("/orgs/acme/audit/?actor=dora&kind=login")
    assert log.context["total"] == 1
    failures = admin_client.get("/orgs/acme/audit/?actor=dora&kind=login_failed")
    assert failures.context["total"] == 0
    assert AuditEvent.objects.filter(kind="login", user=dora).count() == 3


def test_an_admin_changes_a_role_and_keeps_at_least_one_admin(world, admin_client):
    bob = Membership.objects.get(user=world.bob)
    admin_client.post(PEOPLE, {"action": "role", "membership": bob.pk, "role": "admin"})
    bob.refresh_from_db()
    assert bob.role == "admin"
    event = AuditEvent.objects.get(kind="member_role_changed")
    assert event.detail == {
        "username": "bob",
        "from": "member",
        "to": "admin",
        "staff_status_granted": True,
    }
    admin_client.post(PEOPLE, {"action": "role", "membership": bob.pk, "role": "member"})
    alice = Membership.objects.get(user=world.alice)
    refused = admin_client.post(
        PEOPLE, {"action": "role", "membership": alice.pk, "role": "member"}, follow=True
    )
    assert any("last admin of acme" in m for m in messages_of(refused))
    assert Membership.objects.get(pk=alice.pk).role == "admin"


def test_removing_a_member_takes_them_out_of_projects_and_teams(world, admin_client):
    ml = Team.objects.create(organization=world.acme, slug="ml")
    ml.members.add(world.bob)
    bob = Membership.objects.get(user=world.bob)
    admin_client.post(PEOPLE, {"action": "remove", "membership": bob.pk})
    assert not Membership.objects.filter(pk=bob.pk).exists()
    assert not world.web.members.filter(pk=world.bob.pk).exists()
    assert not ml.members.filter(pk=world.bob.pk).exists()
    event = AuditEvent.objects.get(kind="member_removed")
    assert event.detail == {"username": "bob", "projects": ["web"], "teams": ["ml"]}
    bob_client = Client()
    bob_client.force_login(world.bob)
    assert bob_client.get("/orgs/acme/projects/web/environment/").status_code == 404


def test_a_membership_of_another_organization_cannot_be_touched(world, admin_client):
    charlie = Membership.objects.get(user=world.charlie)
    response = admin_client.post(PEOPLE, {"action": "remove", "membership": charlie.pk})
    assert response.status_code == 404
    assert Membership.objects.filter(pk=charlie.pk).exists()


def test_an_admin_unlocks_a_locked_out_member(world, admin_client, settings):
    bob_client = Client()
    for _ in range(settings.AXES_FAILURE_LIMIT):
        bob_client.post("/accounts/login/", {"username": "bob", "password": "wrong"})
    locked = bob_client.post("/accounts/login/", {"username": "bob", "password": "bob-password"})
    assert locked.status_code == 429
    page = admin_client.get(PEOPLE).content.decode()
    assert "locked out" in page
    bob = Membership.objects.get(user=world.bob)
    admin_client.post(PEOPLE, {"action": "unlock", "membership": bob.pk})
    assert AuditEvent.objects.get(kind="member_unlocked").detail["username"] == "bob"
    again = bob_client.post("/accounts/login/", {"username": "bob", "password": "bob-password"})
    assert again.status_code == 302


def test_an_admin_creates_an_account_with_a_one_time_link_shown_once(world, admin_client):
    response = admin_client.post(
        PEOPLE, {"action": "create", "create-username": "newbie", "create-role": "member"}
    )
    assert response.status_code == 200
    assert response["Cache-Control"].startswith("max-age=0")
    link = response.context["created"]["link"]
    assert link.startswith("http://testserver/accounts/set-password/")
    newbie = User.objects.get(username="newbie")
    assert not newbie.has_usable_password()
    assert Membership.objects.get(user=newbie).organization == world.acme
    event = AuditEvent.objects.get(kind="account_created")
    assert event.detail == {"username": "newbie", "role": "member"}
    assert link not in str(event.detail) and "set-password" not in str(event.detail)
    assert link not in admin_client.get(PEOPLE).content.decode()  # shown once

    owner = Client()
    form = owner.get(link, follow=True)
    assert form.status_code == 200 and b"Choose your password" in form.content
    done = owner.post(
        form.redirect_chain[-1][0],
        {"new_password1": "a-Long-new-passw0rd", "new_password2": "a-Long-new-passw0rd"},
    )
    assert done.status_code == 302
    assert (
        Client()
        .post("/accounts/login/", {"username": "newbie", "password": "a-Long-new-passw0rd"})
        .status_code
        == 302
    )
    reused = Client().get(link, follow=True)
    assert b"already been used or has expired" in reused.content


def test_creating_an_account_with_a_taken_username_is_refused(world, admin_client):
    response = admin_client.post(
        PEOPLE, {"action": "create", "create-username": "charlie", "create-role": "member"}
    )
    assert response.status_code == 400
    assert "not available" in response.content.decode()
    assert not Membership.objects.filter(user=world.charlie, organization=world.acme).exists()
