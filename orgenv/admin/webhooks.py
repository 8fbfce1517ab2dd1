"""The workspace's Webhooks tab: an organization's endpoints, each with its settings, its
actions (Send test event, Rotate secret, Enable/Disable, Redeliver) and its delivery log.

Views fetch, check access (orgenv.admin.workspace.workspace_organization: 404 to whoever does
not administer the organization, and for an endpoint of another one) and call the services of
orgenv.notifications.endpoints. The signing secret is rendered in the answer to the POST that
made it (adding, rotating) and nowhere else, with Cache-Control: no-store, as a token is.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.conf import settings
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.db.models import OuterRef, Subquery
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseNotAllowed
from django.shortcuts import redirect

from orgenv.models import Organization, WebhookAttempt, WebhookDelivery, WebhookEndpoint
from orgenv.notifications import endpoints as services
from orgenv.notifications import events

from .workspace import _render, workspace_context, workspace_organization

LOG_PAGE = 50


class EndpointForm(forms.Form):
    name = forms.CharField(
        max_length=64, help_text="Letters, digits, dashes, underscores: deploy-hook, siem."
    )
    url = forms.CharField(
        label="URL",
        max_length=2000,
        help_text="https://… (http only to a host in WEBHOOK_ALLOWED_HOSTS).",
        widget=forms.URLInput(attrs={"placeholder": "https://hooks.example.com/orgenv"}),
    )
    events = forms.MultipleChoiceField(
        choices=[(e, e) for e in events.WEBHOOK_EVENTS],
        widget=forms.CheckboxSelectMultiple,
        help_text="The events sent to this endpoint.",
    )
    format = forms.ChoiceField(
        choices=WebhookEndpoint.Format.choices,
        initial=WebhookEndpoint.Format.STANDARD,
        widget=forms.RadioSelect,
    )

    def apply(self, error: ValidationError) -> None:
        """Show a service's refusal on the fields it names."""
        if hasattr(error, "error_dict"):
            for field, errors in error.message_dict.items():
                self.add_error(field if field in self.fields else None, errors)
        else:
            self.add_error(None, error)


def _endpoint(organization: Organization, endpoint_id: int) -> WebhookEndpoint:
    endpoint = (
        WebhookEndpoint.objects.select_related("organization")
        .filter(organization=organization, pk=endpoint_id)
        .first()
    )
    if endpoint is None:
        raise Http404("No such webhook.")
    return endpoint


def webhooks(request: HttpRequest, org_slug: str) -> HttpResponse:
    organization = workspace_organization(request, org_slug)
    last = WebhookAttempt.objects.filter(endpoint=OuterRef("pk")).order_by("-id")
    endpoints = WebhookEndpoint.objects.filter(organization=organization).annotate(
        last_at=Subquery(last.values("started_at")[:1]),
        last_status=Subquery(last.values("status_code")[:1]),
        last_delivered=Subquery(last.values("delivered")[:1]),
        last_error=Subquery(last.values("error")[:1]),
    )
    context = workspace_context(request, organization, "webhooks", "Webhooks")
    context.update(endpoints=list(endpoints), max_endpoints=services.MAX_ENDPOINTS)
    return _render(request, "webhooks.html", context)


def _secret_page(
    request: HttpRequest, endpoint: WebhookEndpoint, secret: str, *, rotated: bool
) -> HttpResponse:
    context = workspace_context(
        request, endpoint.organization, "webhooks", "Secret rotated" if rotated else "Webhook added"
    )
    context.update(endpoint=endpoint, secret=secret, rotated=rotated)
    response = _render(request, "webhook_secret.html", context)
    response["Cache-Control"] = "no-store"
    return response


def add(request: HttpRequest, org_slug: str) -> HttpResponse:
    organization = workspace_organization(request, org_slug)
    form = EndpointForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            endpoint, secret = services.endpoint_create(
                organization=organization,
                name=form.cleaned_data["name"],
                url=form.cleaned_data["url"],
                events=form.cleaned_data["events"],
                format=form.cleaned_data["format"],
            )
        except ValidationError as error:
            form.apply(error)
        else:
            return _secret_page(request, endpoint, secret, rotated=False)
    context = workspace_context(request, organization, "webhooks", "Add a webhook")
    context.update(form=form)
    return _render(request, "webhook_form.html", context, status=400 if form.errors else 200)


def _log(request: HttpRequest, endpoint: WebhookEndpoint) -> dict[str, Any]:
    """The endpoint's attempts, newest first, a page of LOG_PAGE by keys (`before` an id),
    optionally of one event type."""
    attempts = WebhookAttempt.objects.filter(endpoint=endpoint).select_related(
        "delivery__notification"
    )
    event = request.GET.get("event", "")
    if event in events.WEBHOOK_EVENTS:
        attempts = attempts.filter(delivery__notification__type=event)
    else:
        event = ""
    before = request.GET.get("before", "")
    if before.isdigit():
        attempts = attempts.filter(pk__lt=int(before))
    rows = list(attempts.order_by("-id")[: LOG_PAGE + 1])
    older = rows[LOG_PAGE - 1].pk if len(rows) > LOG_PAGE else None
    return {
        "attempts": rows[:LOG_PAGE],
        "older": older,
        "log_event": event,
        "paged": before.isdigit(),
        "event_choices": events.WEBHOOK_EVENTS,
    }


def endpoint(request: HttpRequest, org_slug: str, endpoint_id: int) -> HttpResponse:
    organization = workspace_organization(request, org_slug)
    hook = _endpoint(organization, endpoint_id)
    initial = {"name": hook.name, "url": hook.url, "events": hook.events, "format": hook.format}
    form = EndpointForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            services.endpoint_update(
                endpoint=hook,
                name=form.cleaned_data["name"],
                url=form.cleaned_data["url"],
                events=form.cleaned_data["events"],
                format=form.cleaned_data["format"],
            )
        except ValidationError as error:
            form.apply(error)
        else:
            messages.success(request, f"Saved webhook {hook.name}.")
            return redirect("admin:orgenv_webhook", organization.slug, hook.pk)
    context = workspace_context(request, organization, "webhooks", f"Webhook {hook.name}")
    context.update(
        endpoint=hook,
        form=form,
        disable_after_days=f"{settings.WEBHOOK_DISABLE_AFTER_DAYS:g}",
        **_log(request, hook),
    )
    return _render(request, "webhook.html", context, status=400 if form.errors else 200)


def action(request: HttpRequest, org_slug: str, endpoint_id: int) -> HttpResponse:
    """The endpoint's buttons, each a POST: test, rotate, enable, disable, redeliver."""
    organization = workspace_organization(request, org_slug)
    hook = _endpoint(organization, endpoint_id)
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    verb = request.POST.get("action", "")
    back = redirect("admin:orgenv_webhook", organization.slug, hook.pk)
    if verb == "rotate":
        secret = services.endpoint_rotate(endpoint=hook)
        return _secret_page(request, hook, secret, rotated=True)
    if verb == "test":
        notification = services.endpoint_test(endpoint=hook)
        messages.success(
            request,
            f"Test event {notification.message_id} queued for {hook.name}: its attempt "
            "appears in the delivery log below.",
        )
    elif verb in ("enable", "disable"):
        services.endpoint_set_enabled(endpoint=hook, enabled=verb == "enable")
        messages.success(request, f"Webhook {hook.name} {verb}d.")
    elif verb == "redeliver":
        delivery = (
            WebhookDelivery.objects.select_related("notification", "endpoint")
            .filter(endpoint=hook, pk=request.POST.get("delivery") or 0)
            .first()
            if str(request.POST.get("delivery", "")).isdigit()
            else None
        )
        if delivery is None:
            raise Http404("No such delivery.")
        try:
            services.delivery_redeliver(delivery=delivery)
        except ValidationError as error:
            messages.error(request, " ".join(error.messages))
        else:
            messages.success(
                request,
                f"Delivery of {delivery.notification.message_id} queued again (same "
                "webhook-id: a receiver that has it drops the copy).",
            )
    else:
        messages.error(request, "Unknown action: use the page's buttons.")
    return back


def delete(request: HttpRequest, org_slug: str, endpoint_id: int) -> HttpResponse:
    organization = workspace_organization(request, org_slug)
    hook = _endpoint(organization, endpoint_id)
    if request.method == "POST":
        services.endpoint_delete(endpoint=hook)
        messages.success(request, f"Removed webhook {hook.name}: nothing more is sent to it.")
        return redirect("admin:orgenv_webhooks", organization.slug)
    context = workspace_context(request, organization, "webhooks", f"Remove webhook {hook.name}")
    context.update(endpoint=hook)
    return _render(request, "webhook_delete.html", context)
