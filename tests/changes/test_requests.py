"""Change requests through the workspace: a protected group's save opens one, another admin
approves, rejects; the author withdraws, updates or breaks glass."""

from __future__ import annotations

import logging

import pytest
from django.core import mail

from orgenv.models import (
    AuditEvent,
    ChangeRequest,
    Notification,
    Variable,
    VariableGroup,
)
from orgenv.selectors.layers import load_layers
from tests.admin.test_groups import group_data
from tests.changes.conftest import NEW_SECRET, SECRET
from tests.conftest import make_group
from tests.notifications.worker import run_ready

pytestmark = pytest.mark.django_db


def rows(group, **changes):
    """The group's variable rows as the change page posts them, with `changes` typed in."""
    out = []
    for v in group.variables.order_by("name"):
        row = {"id": v.pk, "name": v.name, "is_secret": v.is_secret}
        row["value"] = "" if v.is_secret else v.value
        out.append(row)
    for row in out:
        if row["name"] in changes:
            row["value"] = changes.pop(row["name"])
    for name, value in changes.items():
        out.append({"name": name, "value": value})
    return out


def propose(client, group, variables, **fields):
    """POST the group's change page as a browser does (its protection ticked, as stored)."""
    url = f"/admin/orgenv/variablegroup/{group.pk}/change/"
    posted = {"required_approvals": str(group.required_approvals), **fields}
    if group.protected:
        posted.setdefault("protected", "on")
    return client.post(url, group_data(group, variables, **posted))


def page_of(request: ChangeRequest) -> str:
    return f"/admin/orgs/acme/requests/{request.pk}/"


def act(client, request, action, **data):
    return client.post(page_of(request), {"action": action, **data})


def everything_mailed() -> str:
    return "\n".join(m.subject + "\n" + m.body for m in mail.outbox)


def test_saving_a_protected_group_opens_a_request_and_changes_nothing(client, world, review):
    client.force_login(world.alice)
    before = Variable.history.count()
    response = propose(client, review.group, rows(review.group, S=NEW_SECRET, B="two"))
    request = ChangeRequest.objects.get()
    assert response.status_code == 302 and response["Location"] == page_of(request)
    # Nothing applied: same values, no history row, the runner gets the old secret.
    assert Variable.objects.get(name="S").value == SECRET
    assert not Variable.objects.filter(name="B").exists()
    assert Variable.history.count() == before
    assert request.author == world.alice and request.status == "open"
    assert request.diff == [["variable", "B", "added"], ["variable", "S", "value changed"]]
    page = client.get(page_of(request)).content.decode()
    assert "value changed" in page and "This change affects 1 project." in page
    assert NEW_SECRET not in page and SECRET not in page and "'two'" not in page
    # The tab counts it.
    tab = client.get("/admin/orgs/acme/requests/").content.decode()
    assert 'aria-label="1 open"' in tab and f"#{request.pk} change" in tab


def test_another_admin_approves_and_it_applies_as_the_authors_change(client, world, review):
    client.force_login(world.alice)
    propose(client, review.group, rows(review.group, S=NEW_SECRET), priority="5")
    request = ChangeRequest.objects.get()
    client.force_login(review.dora)
    response = act(client, request, "approve")
    assert response.status_code == 302
    request.refresh_from_db()
    assert request.status == "applied" and request.closed_by == "dora"
    assert Variable.objects.get(name="S").value == NEW_SECRET
    assert VariableGroup.objects.get(pk=review.group.pk).priority == 5
    assert load_layers(world.web).resolution.variables["S"].value is not None
    record = Variable.history.filter(name="S").latest("history_id")
    assert record.history_actor == "alice" or record.history_user == world.alice
    assert "approved by dora" in record.history_change_reason
    applied = AuditEvent.objects.get(kind=AuditEvent.Kind.CHANGE_APPLIED)
    assert applied.detail["approvers"] == ["dora"] and applied.actor == "alice"
    history = client.get(f"/admin/orgenv/variablegroup/{review.group.pk}/history/")
    assert "Changes applied through change requests" in history.content.decode()


def test_the_author_can_never_approve_not_even_by_a_crafted_post(client, world, review):
    client.force_login(world.alice)
    propose(client, review.group, rows(review.group, A="2"))
    request = ChangeRequest.objects.get()
    page = client.get(page_of(request)).content.decode()
    assert 'value="approve"' not in page
    response = act(client, request, "approve")
    assert response.status_code == 409
    assert "you cannot approve it" in response.content.decode()
    assert Variable.objects.get(name="A").value == "1"
    assert ChangeRequest.objects.get().status == "open"


def test_rejection_needs_a_comment_and_tells_the_author(
    client, world, review, django_capture_on_commit_callbacks
):
    client.force_login(world.alice)
    propose(client, review.group, rows(review.group, A="2"))
    request = ChangeRequest.objects.get()
    client.force_login(review.dora)
    assert act(client, request, "reject", comment=" ").status_code == 409
    with django_capture_on_commit_callbacks(execute=True):
        assert act(client, request, "reject", comment="Not during the freeze").status_code == 302
    request.refresh_from_db()
    assert request.status == "rejected" and request.close_comment == "Not during the freeze"
    assert Variable.objects.get(name="A").value == "1"
    run_ready()
    rejected = [m for m in mail.outbox if "rejected" in m.subject]
    assert [m.to for m in rejected] == [["alice@acme.example"]]
    assert "Not during the freeze" in rejected[0].body


def test_withdrawal_is_the_authors_only(client, world, review):
    client.force_login(world.alice)
    propose(client, review.group, rows(review.group, A="2"))
    request = ChangeRequest.objects.get()
    client.force_login(review.dora)
    assert act(client, request, "withdraw").status_code == 409
    client.force_login(world.alice)
    assert act(client, request, "withdraw").status_code == 302
    assert ChangeRequest.objects.get().status == "withdrawn"
    assert act(client, request, "withdraw").status_code == 409  # closed: nothing more


def test_a_request_whose_group_changed_since_cannot_be_approved_until_updated(
    client, world, review
):
    client.force_login(world.alice)
    propose(client, review.group, rows(review.group, A="2"))
    request = ChangeRequest.objects.get()
    Variable.objects.create(group=review.group, name="C", value="from-a-command")
    client.force_login(review.dora)
    response = act(client, request, "approve")
    assert response.status_code == 409
    text = response.content.decode()
    assert "changed after this request was made" in text and "its author updates it" in text
    assert Variable.objects.get(name="A").value == "1"
    client.force_login(world.alice)
    assert act(client, request, "update").status_code == 302
    client.force_login(review.dora)
    assert act(client, request, "approve").status_code == 302
    assert Variable.objects.get(name="A").value == "2"
    assert Variable.objects.get(name="C").value == "from-a-command"  # kept: not in the request


def test_two_required_approvals_need_two_different_admins(client, world, review):
    review.group.required_approvals = 2
    review.group.save()
    client.force_login(world.alice)
    propose(client, review.group, rows(review.group, A="2"), required_approvals="2")
    request = ChangeRequest.objects.get()
    client.force_login(review.dora)
    act(client, request, "approve")
    assert ChangeRequest.objects.get().status == "open"
    assert act(client, request, "approve").status_code == 409  # dora again: refused
    assert Variable.objects.get(name="A").value == "1"
    client.force_login(review.erin)
    act(client, request, "approve")
    assert ChangeRequest.objects.get().status == "applied"
    assert Variable.objects.get(name="A").value == "2"
    reason = Variable.history.filter(name="A").latest("history_id").history_change_reason
    assert "approved by dora, erin" in reason


def test_break_glass_applies_at_once_audited_and_mailed_to_every_admin(
    client, world, review, django_capture_on_commit_callbacks
):
    client.force_login(world.alice)
    propose(client, review.group, rows(review.group, S=NEW_SECRET))
    request = ChangeRequest.objects.get()
    assert act(client, request, "force", reason="").status_code == 409
    with django_capture_on_commit_callbacks(execute=True):
        response = act(client, request, "force", reason="database leaked, rotating now")
    assert response.status_code == 302
    assert Variable.objects.get(name="S").value == NEW_SECRET
    forced = AuditEvent.objects.get(kind=AuditEvent.Kind.CHANGE_FORCED)
    assert forced.detail["reason"] == "database leaked, rotating now"
    assert forced.detail["names"] == ["S"] and forced.actor == "alice"
    run_ready()
    forced_mails = [m for m in mail.outbox if "forced a change" in m.subject]
    assert sorted(m.to[0] for m in forced_mails) == [
        "alice@acme.example", "dora@acme.example", "erin@acme.example",
    ]  # fmt: skip
    assert "database leaked" in forced_mails[0].body


def test_deleting_a_protected_group_opens_a_request(client, world, review):
    client.force_login(world.alice)
    url = f"/admin/orgenv/variablegroup/{review.group.pk}/delete/"
    assert "opens a change request" in client.get(url).content.decode()
    response = client.post(url, {"post": "yes", "_change_comment": "retired"})
    request = ChangeRequest.objects.get()
    assert response["Location"] == page_of(request)
    assert request.kind == "deletion" and request.comment == "retired"
    assert VariableGroup.objects.filter(pk=review.group.pk).exists()
    client.force_login(review.dora)
    act(client, request, "approve")
    assert not VariableGroup.objects.filter(pk=review.group.pk).exists()
    request.refresh_from_db()
    assert request.status == "applied" and request.group is None


def test_grants_environment_and_access_changes_open_requests_too(client, world, review):
    client.force_login(world.alice)
    propose(
        client, review.group, rows(review.group),
        projects=[str(world.web.pk), str(review.api.pk)], access="all",
    )  # fmt: skip
    request = ChangeRequest.objects.get()
    assert ["grant", "project api", "granted"] in request.diff
    assert ["group", "access", "selected → all"] in request.diff
    assert list(review.group.projects.all()) == [world.web]


def test_a_member_or_another_organizations_admin_gets_404(client, world, review):
    client.force_login(world.alice)
    propose(client, review.group, rows(review.group, A="2"))
    request = ChangeRequest.objects.get()
    for user in (world.bob, world.charlie):
        client.force_login(user)
        assert client.get(page_of(request)).status_code in (302, 404)
        assert act(client, request, "approve").status_code in (302, 404)
    world.charlie.is_staff = True
    client.force_login(world.charlie)
    assert client.get(page_of(request)).status_code == 404
    assert act(client, request, "approve").status_code == 404
    assert client.get(f"/admin/orgs/globex/requests/{request.pk}/").status_code == 404
    assert ChangeRequest.objects.get().status == "open"


def test_an_unprotected_group_saves_at_once(client, world, review):
    group = make_group(world.acme, "open-group", variables={"X": "1"})
    client.force_login(world.alice)
    propose(client, group, rows(group, X="2"))
    assert Variable.objects.get(name="X").value == "2"
    assert not ChangeRequest.objects.exists()


def test_a_secrets_proposed_value_is_in_no_page_mail_notification_log_or_audit_record(
    client, world, review, django_capture_on_commit_callbacks, caplog
):
    caplog.set_level(logging.DEBUG)
    client.force_login(world.alice)
    with django_capture_on_commit_callbacks(execute=True):
        propose(client, review.group, rows(review.group, S=NEW_SECRET))
    request = ChangeRequest.objects.get()
    pages = [client.get(page_of(request)), client.get("/admin/orgs/acme/requests/")]
    client.force_login(review.dora)
    pages.append(client.get(page_of(request)))
    with django_capture_on_commit_callbacks(execute=True):
        pages.append(act(client, request, "approve"))
    pages.append(client.get(page_of(request)))
    pages.append(client.get("/admin/orgs/acme/audit/"))
    pages.append(client.get(f"/admin/orgenv/variablegroup/{review.group.pk}/history/"))
    run_ready()
    assert mail.outbox
    texts = [p.content.decode() for p in pages] + [everything_mailed()]
    texts += [str(n.data) for n in Notification.objects.all()]
    texts += [str(e.detail) + e.actor for e in AuditEvent.objects.all()]
    texts += [str(r.diff) + str(r.fields) for r in ChangeRequest.objects.all()]
    texts.append(caplog.text)
    for text in texts:
        assert NEW_SECRET not in text and SECRET not in text


def test_pages_and_commands_keep_working_with_a_request_pending(client, world, review):
    """A pending change is not a change: every page reads the group as it is."""
    import io

    from django.core.management import call_command

    client.force_login(world.alice)
    propose(client, review.group, rows(review.group, S=NEW_SECRET, B="two"))
    for url in (
        "/admin/orgs/acme/people/",
        "/admin/orgs/acme/audit/",
        "/admin/orgs/acme/",
        "/orgs/acme/hygiene/",
        f"/admin/orgenv/variablegroup/{review.group.pk}/change/",
    ):
        response = client.get(url)
        assert response.status_code == 200, url
        assert NEW_SECRET not in response.content.decode()
    out = io.StringIO()
    call_command("exposure", "acme/live", "S", stdout=out)
    assert NEW_SECRET not in out.getvalue()
    client.force_login(world.bob)
    home = client.get("/").content.decode()
    assert "'two'" not in home and NEW_SECRET not in home
    assert "B" not in load_layers(world.web).resolution.variables


def test_a_change_a_guard_refuses_by_now_is_refused_on_approval_and_nothing_applies(
    client, world, review
):
    client.force_login(world.alice)
    propose(client, review.group, rows(review.group, A="2"),
            projects=[str(world.web.pk), str(review.api.pk)])  # fmt: skip
    request = ChangeRequest.objects.get()
    review.api.environment = "staging"  # relabelled since: the guard refuses the grant now
    review.api.save()
    client.force_login(review.dora)
    assert "no longer applies" in client.get(page_of(request)).content.decode()
    response = act(client, request, "approve")
    assert response.status_code == 409
    assert "This change no longer applies as it is" in response.content.decode()
    assert Variable.objects.get(name="A").value == "1"
    assert ChangeRequest.objects.get().status == "open" and not request.approvals.exists()
