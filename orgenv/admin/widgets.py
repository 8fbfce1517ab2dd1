"""Widgets of the group and project pages: the key-icon secret toggle and the pickers that
show each project's (or group's) environment and disable, with the reason, what the
environment guard refuses. The server decides (orgenv.validators.guard_refuses, and the
forms' checks on save); static/workspace.js only follows a label as it is typed."""

from __future__ import annotations

from typing import Any

from django import forms

from orgenv.validators import guard_refuses


class SecretToggle(forms.CheckboxInput):
    """The `is_secret` checkbox drawn as a key: its accessible name is "Secret"."""

    template_name = "orgenv/widgets/secret_toggle.html"

    def __init__(self, attrs: dict[str, Any] | None = None) -> None:
        super().__init__({"aria-label": "Secret", "class": "secret-input", **(attrs or {})})


class Picker(forms.CheckboxSelectMultiple):
    """Checkboxes, one per line, labelled by `label_of(instance)`."""

    template_name = "orgenv/widgets/picker.html"
    option_template_name = "orgenv/widgets/picker_option.html"

    def __init__(self, *, empty_text: str, label_of: Any = str) -> None:
        super().__init__()
        self.empty_text = empty_text
        self.label_of = label_of

    def get_context(self, name: str, value: Any, attrs: dict[str, Any] | None) -> dict[str, Any]:
        context = super().get_context(name, value, attrs)
        context["widget"]["empty_text"] = self.empty_text
        return context

    def create_option(
        self, name: str, value: Any, label: Any, selected: bool, *args: Any, **kw: Any
    ):  # type: ignore[no-untyped-def]
        option = super().create_option(name, value, label, selected, *args, **kw)
        instance = getattr(value, "instance", None)
        if instance is not None:
            option["label"] = self.label_of(instance)
        return option


class GuardedPicker(Picker):
    """Projects for a group (side "group"), or groups for a project (side "project"), each
    with its environment; those the guard refuses are disabled and say why. `environment`
    is the label of the group or project being edited, set by its form."""

    def __init__(self, *, side: str, empty_text: str, label_of: Any = str) -> None:
        super().__init__(empty_text=empty_text, label_of=label_of)
        self.side = side
        self.environment = ""

    def refusal(self, other: str) -> str:
        """Why the guard refuses an option labelled `other`, or ""."""
        if self.side == "group":
            refused = guard_refuses(self.environment, other)
        else:
            refused = guard_refuses(other, self.environment)
        if not refused:
            return ""
        return (
            f"labelled {other or '(no environment)'}, this {self.side} is "
            f"{self.environment or '(no environment)'}"
        )

    def get_context(self, name: str, value: Any, attrs: dict[str, Any] | None) -> dict[str, Any]:
        context = super().get_context(name, value, attrs)
        context["widget"]["guard_source"] = "id_environment"
        context["widget"]["guard_side"] = self.side
        return context

    def create_option(
        self, name: str, value: Any, label: Any, selected: bool, *args: Any, **kw: Any
    ):  # type: ignore[no-untyped-def]
        option = super().create_option(name, value, label, selected, *args, **kw)
        instance = getattr(value, "instance", None)
        if instance is None:
            return option
        other = instance.environment
        reason = self.refusal(other)
        option["environment"] = other
        option["attrs"]["data-environment"] = other
        option["refused"], option["reason"] = bool(reason), reason
        if reason and not selected:
            option["attrs"]["disabled"] = True
        return option


def guarded(field: forms.Field, environment: str) -> None:
    """Tell a form field's GuardedPicker (inside the admin's related-object wrapper, if
    any) the label of the object being edited."""
    widget = getattr(field.widget, "widget", field.widget)
    if isinstance(widget, GuardedPicker):
        widget.environment = environment
