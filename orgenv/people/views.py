"""The People page of an organization, in the admin (`admin:orgenv_people`), and the
invited user's Accept / Decline on `/`.

Every action is a POST with an `action` field; each calls one service, which records the
audit event. The page answers 404 to anyone who does not administer the organization.
"""

from __future__ import annotations

from collections.abc import Callable

from django.contrib import admin, messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBadRequest
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from orgenv import access
from orgenv.admin.workspace import frame_context
from orgenv.models import Invitation, Membership, Organization

from . import selectors, services
from .forms import CreateAccountForm, InviteForm, RoleForm


def _organization(request: HttpRequest, slug: str) -> Organization:
    organization = Organization.objects.filter(slug=slug).first()
    if organization is None or not access.is_org_admin(request.user, organization):
        raise Http404("No such organization.")
    return organization


def _error_text(exc: ValidationError) -> str:
    return " ".join(exc.messages)


def _invite(request: HttpRequest, organization: Organization, forms: dict) -> HttpResponse | None:
    form = forms["invite"] = InviteForm(request.POST, prefix="invite")
    if not form.is_valid():
        return None
    username = form.cleaned_data["username"].strip()
    try:
        services.invitation_send(
            organization=organization,
            username=username,
            role=form.cleaned_data["role"],
            invited_by=request.user,
        )
    except ValidationError as exc:
        form.add_error("username", _error_text(exc))
        return None
    # The same words whether or not an account named so exists: inviting is no oracle.
    messages.success(
        request,
        f"Invitation to {organization.slug} recorded for {username}. If an account with that "
        "username exists, its owner sees the invitation on their home page and can accept "
        f"or decline it within {services.INVITATION_DAYS} days.",
    )
    return None


def _membership(request: HttpRequest, organization: Organization) -> Membership:
    return get_object_or_404(
        Membership.objects.select_related("user", "organization"),
        pk=request.POST.get("membership"),
        organization=organization,
    )


def _role(request: HttpRequest, organization: Organization, forms: dict) -> HttpResponse | None:
    membership = _membership(request, organization)
    form = RoleForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Role: choose admin or member.")
        return None
    try:
        services.member_role_change(membership=membership, role=form.cleaned_data["role"])
    except ValidationError as exc:
        messages.error(request, _error_text(exc))
        return None
    messages.success(request, f"{membership.user} is now {membership.role} of {organization}.")
    return None


def _remove(request: HttpRequest, organization: Organization, forms: dict) -> HttpResponse | None:
    membership = _membership(request, organization)
    try:
        services.member_remove(membership=membership)
    except ValidationError as exc:
        messages.error(request, _error_text(exc))
        return None
    messages.success(
        request,
        f"{membership.user} no longer belongs to {organization}, nor to its projects and teams.",
    )
    return None


def _unlock(request: HttpRequest, organization: Organization, forms: dict) -> HttpResponse | None:
    membership = _membership(request, organization)
    services.member_unlock(membership=membership)
    messages.success(request, f"{membership.user} can sign in again.")
    return None


def _cancel(request: HttpRequest, organization: Organization, forms: dict) -> HttpResponse | None:
    invitation = get_object_or_404(
        Invitation, pk=request.POST.get("invitation"), organization=organization
    )
    try:
        services.invitation_cancel(invitation=invitation)
    except ValidationError as exc:
        messages.error(request, _error_text(exc))
        return None
    messages.success(request, f"The invitation of {invitation.username} is cancelled.")
    return None


def _create(request: HttpRequest, organization: Organization, forms: dict) -> HttpResponse | None:
    form = forms["create"] = CreateAccountForm(request.POST, prefix="create")
    if not form.is_valid():
        return None
    try:
        created = services.account_create(
            organization=organization,
            username=form.cleaned_data["username"],
            role=form.cleaned_data["role"],
        )
    except ValidationError as exc:
        form.add_error("username", _error_text(exc))
        return None
    # The link is rendered in this answer only: never stored, never put in a message.
    forms["created"] = {
        "username": created.user.get_username(),
        "link": request.build_absolute_uri(created.set_password_path),
    }
    forms["create"] = CreateAccountForm(prefix="create")
    return None


ACTIONS: dict[str, Callable[..., HttpResponse | None]] = {
    "invite": _invite,
    "role": _role,
    "remove": _remove,
    "unlock": _unlock,
    "cancel": _cancel,
    "create": _create,
}


@never_cache
def people(request: HttpRequest, org_slug: str) -> HttpResponse:
    organization = _organization(request, org_slug)
    forms: dict = {}
    status = 200
    if request.method == "POST":
        handler = ACTIONS.get(request.POST.get("action", ""))
        if handler is None:
            return HttpResponseBadRequest("action: one of " + ", ".join(ACTIONS))
        handler(request, organization, forms)
        bound = [f for key, f in forms.items() if key in ("invite", "create")]
        if "created" not in forms and not any(f.errors for f in bound):
            return redirect(request.path)  # after a success: a reload must not repeat it
        status = 200 if "created" in forms else 400
    context = {
        **admin.site.each_context(request),
        **frame_context(request, organization, "people"),  # the workspace's tabs
        "title": f"People of {organization.slug}",
        "organization": organization,
        "people": selectors.people_of(organization),
        "invitations": selectors.pending_invitations(organization),
        "invite_form": forms.get("invite") or InviteForm(prefix="invite"),
        "create_form": forms.get("create") or CreateAccountForm(prefix="create"),
        "created": forms.get("created"),
        "roles": Membership.Role.choices,
        "invitation_days": services.INVITATION_DAYS,
    }
    return render(request, "admin/orgenv/people.html", context, status=status)


def _my_invitation(request: HttpRequest, pk: int) -> Invitation:
    return get_object_or_404(selectors.invitations_for(request.user), pk=pk)


@require_POST
@login_required
def accept_invitation(request: HttpRequest, pk: int) -> HttpResponse:
    invitation = _my_invitation(request, pk)
    try:
        membership = services.invitation_accept(invitation=invitation, user=request.user)
    except ValidationError as exc:
        messages.error(request, _error_text(exc))
        return redirect("home")
    messages.success(request, f"You joined {invitation.organization.name} as {membership.role}.")
    return redirect("home")


@require_POST
@login_required
def decline_invitation(request: HttpRequest, pk: int) -> HttpResponse:
    invitation = _my_invitation(request, pk)
    try:
        services.invitation_decline(invitation=invitation, user=request.user)
    except ValidationError as exc:
        messages.error(request, _error_text(exc))
        return redirect("home")
    messages.info(request, f"You declined the invitation to {invitation.organization.name}.")
    return redirect("home")


def people_url(organization: Organization) -> str:
    return reverse("admin:orgenv_people", kwargs={"org_slug": organization.slug})
