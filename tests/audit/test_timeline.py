"""The audit timeline (orgenv.audit.timeline) over the audit page: the project filter follows
grant changes, empty history rows stay out, key rotations reach every organization, and
token creators are named."""

from __future__ import annotations

import csv
import io
import re

from django.contrib.auth.models import User
from django.core.management import call_command

from orgenv.audit import events as audit
from orgenv.models import Project, Team
from orgenv.tokens import token_issue
from tests.conftest import make_group


def _whats(client, query: str) -> list[tuple[str, str]]:
    response = client.get(f"/orgs/acme/audit.csv?{query}")
    text = b"".join(response.streaming_content).decode()
    return [(row[3], row[4]) for row in list(csv.reader(io.StringIO(text)))[1:]]


def _text(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]*>", " ", html))


def test_the_project_filter_shows_the_group_changes_that_granted_or_revoked_it(client, world):
    api = Project.objects.create(organization=world.acme, slug="api", name="API")
    prod = make_group(world.acme, "prod", projects=[world.web])
    prod.description = "touches no grant"
    prod.save()
    prod.projects.add(api)  # a grant change, but not web's
    prod.projects.remove(world.web)
    make_group(world.acme, "elsewhere", projects=[api])
    client.force_login(world.alice)

    groups = [(w, c) for w, c in _whats(client, "project=web") if w.startswith("group")]
    assert groups == [
        ("group prod", "projects removed: web"),
        ("group prod", "projects added: web"),
    ]
    page = _text(client.get("/orgs/acme/audit/?project=web").content.decode())
    assert "changed group prod projects added: web" in page
    assert "elsewhere" not in page and "touches no grant" not in page


def test_the_project_filter_shows_group_changes_to_a_team_of_the_project(client, world):
    ml = Team.objects.create(organization=world.acme, slug="ml")
    world.web.teams.add(ml)
    other = Team.objects.create(organization=world.acme, slug="other")
    group = make_group(world.acme, "ml-secrets", teams=[ml])
    group.teams.add(other)  # not a team of web: not web's business
    group.teams.remove(ml)
    client.force_login(world.alice)
    groups = [(w, c) for w, c in _whats(client, "project=web") if w.startswith("group")]
    assert groups == [
        ("group ml-secrets", "teams removed: ml"),
        ("group ml-secrets", "teams added: ml"),
    ]


def test_a_history_row_that_changed_nothing_is_left_out_of_the_timeline(client, world):
    group = make_group(world.acme, "quiet", description="as it was")
    group.save()  # a second row, identical to the first
    group.save()
    client.force_login(world.alice)
    page = _text(client.get("/orgs/acme/audit/?group=quiet").content.decode())
    assert "created group quiet" in page
    assert "changed group quiet" not in page
    assert [w for w, _ in _whats(client, "group=quiet")] == ["group quiet"]


def test_a_key_rotation_shows_in_every_organizations_timeline(client, world):
    make_group(world.acme, "g", secrets={"S": "rotate-me-31c"})
    call_command("rotate_keys", stdout=io.StringIO())
    for admin, org in ((world.alice, "acme"), (world.charlie, "globex")):
        client.force_login(admin)
        page = client.get(f"/orgs/{org}/audit/?kind=keys_rotated").content.decode()
        assert "keys rotated" in page and "system:rotate_keys" in page, org
        assert "1 entry" in page
        assert "rotate-me-31c" not in page


def test_a_tokens_creator_is_named_by_username_in_the_timeline(client, world):
    root = User.objects.create_superuser("root", password="root-password")  # not a member
    by_alice, _ = token_issue(project=world.web, name="by-alice", created_by=world.alice)
    by_root, _ = token_issue(project=world.web, name="by-root", created_by=root)
    client.force_login(world.alice)
    changes = dict(_whats(client, "kind=changes&project=web"))
    assert "created_by: alice" in changes[f"token by-alice ({by_alice.prefix}…) of web"]
    assert "created_by: root" in changes[f"token by-root ({by_root.prefix}…) of web"]
    assert not re.search(r"created_by: #?\d", str(changes))


def test_dropping_empty_rows_loses_no_entry_between_pages(client, world):
    from orgenv.models import AuditEvent

    group = make_group(world.acme, "noisy")
    for _ in range(30):
        group.save()  # rows with nothing to show, newer than the events below
    for i in range(70):
        audit.record(AuditEvent.Kind.RESOLUTION, project=world.web, actor=f"token:n{i:02d}")
    for _ in range(30):
        group.save()
    client.force_login(world.alice)
    seen = []
    for number in (1, 2, 3):
        page = client.get(f"/orgs/acme/audit/?page={number}").content.decode()
        seen += re.findall(r"token:n\d\d", page)
    assert sorted(seen) == [f"token:n{i:02d}" for i in range(70)]
