"""Forms of the admin: the write-only secret value, and the group's grant checks.

The secret value widget, decided:
- a stored secret is never rendered: the textarea of a secret row is always empty, also
  when the form comes back with errors (then a newly typed secret must be typed again);
- leaving it blank keeps the stored value; typing anything replaces it (so a secret cannot
  be set to empty text here: delete the variable instead);
- un-marking a secret needs the value typed again, since nobody can see the old one;
- a new secret needs a value: its box comes back empty when the form has errors, and a
  blank secret saved by accident would be worse than an error;
- public values are shown and edited as plain multi-line text.
"""

from __future__ import annotations

from typing import Any

from django import forms

from orgenv.crypto import Undecryptable
from orgenv.models import VariableGroup, starts_protected
from orgenv.validators import environment_guard_errors

from .base import OrgScopedForm
from .widgets import GuardedPicker, SecretToggle, guarded

SECRET_PLACEHOLDER = "•••••• stored, never shown. Leave blank to keep it; type to replace it."
NEW_SECRET_PLACEHOLDER = "Type the secret value (again, if the form came back): it is never shown."


class SecretValueWidget(forms.Textarea):
    """A textarea that never renders its value."""

    def format_value(self, value: Any) -> None:
        return None


def as_posted(text: str) -> str:
    """A value as a browser's textarea posts it back, once CRLF is made LF: every line break
    (CRLF, CR or LF) becomes LF."""
    return text.replace("\r\n", "\n").replace("\r", "\n")


class ValueField(forms.CharField):
    """Multi-line text kept as typed, with browser line endings made Unix ones (a textarea
    always posts CRLF, which would change every multi-line value on each save). A stored
    value whose only difference is its line endings counts as unchanged, so saving a page
    never rewrites a value (a PEM file with CRLF, say) that nobody touched."""

    write_only = False

    def to_python(self, value: Any) -> str:
        text = super().to_python(value)
        return text.replace("\r\n", "\n")

    def has_changed(self, initial: Any, data: Any) -> bool:
        if self.write_only:
            return bool(data)  # blank keeps the stored secret: nothing changed
        return as_posted(initial or "") != as_posted(self.to_python(data))


class DefinitionForm(OrgScopedForm):
    """A variable of a group or a project variable (name, value, secret)."""

    value = ValueField(required=False, strip=False, widget=forms.Textarea(attrs={"rows": 2}))

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if "is_secret" in self.fields:
            self.fields["is_secret"].widget = SecretToggle()
        # Read before the form touches the instance: what is stored now.
        self.stored_secret = bool(self.instance.pk and self.instance.is_secret)
        self.undecryptable = isinstance(self.instance.value, Undecryptable)
        field = self.fields["value"]
        if self.undecryptable:
            # Nobody can see it, nor needs to: blank keeps the stored token, typing replaces it.
            field.write_only = True
            note = self.instance.value.describe()
            field.widget = SecretValueWidget(
                attrs={"rows": 2, "placeholder": f"{note}. Type a new value to replace it."}
            )
            field.help_text = f"{note}: add its key to FERNET_KEYS, or replace or delete it."
        elif self.stored_secret:
            field.write_only = True
            field.widget = SecretValueWidget(attrs={"rows": 2, "placeholder": SECRET_PLACEHOLDER})
        elif self._posted_as_secret():
            field.widget = SecretValueWidget(
                attrs={"rows": 2, "placeholder": NEW_SECRET_PLACEHOLDER}
            )

    def _posted_as_secret(self) -> bool:
        if not self.is_bound or "is_secret" not in self.fields:
            return False
        widget = self.fields["is_secret"].widget
        return bool(widget.value_from_datadict(self.data, self.files, self.add_prefix("is_secret")))

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        if self.undecryptable:
            if cleaned.get("value", "") == "":
                cleaned["value"] = self.instance.value  # blank keeps the stored token
            return cleaned
        stored, typed = self.instance.value if self.instance.pk else None, cleaned.get("value")
        if not self.stored_secret and stored is not None and typed is not None:
            if as_posted(typed) == as_posted(stored):
                cleaned["value"] = stored  # only the browser's line endings differ
        if not self.stored_secret and cleaned.get("is_secret") and cleaned.get("value") == "":
            self.add_error(
                "value",
                "Type a value for this secret (it is never shown after saving, so the box "
                "is empty again when the form has errors).",
            )
        if (
            "not_a_secret" in self.fields
            and "value" in self.changed_data
            and "not_a_secret" not in self.changed_data
        ):
            # The acknowledgement was for the old value; a new one is judged again.
            cleaned["not_a_secret"] = False
        if self.stored_secret and cleaned.get("value", "") == "":
            if cleaned.get("is_secret"):
                cleaned["value"] = self.instance.value  # blank keeps the stored secret
            else:
                self.add_error(
                    "value",
                    "Type the value again to make this variable public: a stored secret is "
                    "never shown, so un-marking it needs the value entered.",
                )
        return cleaned


class GroupForm(OrgScopedForm):
    """A variable group; its selected projects must pass the environment guard."""

    class Meta:
        model = VariableGroup
        fields = "__all__"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if "description" in self.fields:
            self.fields["description"].widget.attrs["rows"] = 2
        if "required_approvals" in self.fields and self.is_bound:
            if "required_approvals" not in self.data:
                # A form posted without it (a script's POST) keeps the count as it is.
                self.fields["required_approvals"].disabled = True
        if "projects" in self.fields:
            # The picker disables what the guard refuses: for the label as posted (a form
            # that came back), else as stored.
            label = self.data.get("environment") if self.is_bound else None
            guarded(self.fields["projects"], (label or self.instance.environment or "").strip())

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        projects = cleaned.get("projects")
        environment = cleaned.get("environment", "")
        name = cleaned.get("name") or self.instance.name
        if self.instance.pk is None and starts_protected(environment):
            cleaned["protected"] = True  # SPEC: a new production group starts protected
        if projects and environment:
            # Checked here, before the m2m save, so the m2m_changed guard never has to.
            pairs = [(p.slug, p.environment) for p in projects]
            for message in environment_guard_errors(name, environment, pairs):
                self.add_error("projects", message)
        return cleaned

    def _post_clean(self) -> None:
        # VariableGroup.clean judges a new label against the projects stored before this
        # save; this form judges it against the projects being saved (clean() above), which
        # are what will count. Keep only the errors the form itself found.
        judged = "projects" in self.fields and "projects" in self.cleaned_data
        environment = self.cleaned_data.get("environment")
        before = list(self._errors.get("environment", [])) if judged else None
        super()._post_clean()
        if judged and "environment" in self._errors:
            if before:
                self._errors["environment"] = self.error_class(before)
            else:
                del self._errors["environment"]
                self.cleaned_data["environment"] = environment


class ProjectForm(OrgScopedForm):
    """A project and the groups that select it, granted from the project's side with the
    same environment guard as from the group's. `group_choices` is set per request by the
    admin (the groups of the project's organization)."""

    group_choices: Any = VariableGroup.objects.none()

    granted_groups = forms.ModelMultipleChoiceField(
        queryset=VariableGroup.objects.none(),
        required=False,
        label="Groups",
        help_text="Groups selecting this project. Groups for all projects and team grants "
        "reach it too (see the effective environment below).",
        widget=GuardedPicker(
            side="project",
            empty_text="This organization has no group yet.",
            label_of=lambda group: (
                group.name + (" — already reaches all projects" if group.access == "all" else "")
            ),
        ),
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["granted_groups"]
        field.queryset = self.group_choices
        if self.instance.pk is not None:
            self.initial["granted_groups"] = list(
                self.instance.granted_groups.values_list("pk", flat=True)
            )
        label = self.data.get("environment") if self.is_bound else None
        guarded(field, (label or self.instance.environment or "").strip())

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        groups = cleaned.get("granted_groups")
        environment = cleaned.get("environment", "")
        slug = cleaned.get("slug") or self.instance.slug
        if groups is not None:
            # A protected group's grants change on its own page, through a change request.
            before = set(self.initial.get("granted_groups", []))
            touched = sorted(
                g.name
                for g in VariableGroup.objects.filter(
                    pk__in=before ^ {g.pk for g in groups}, protected=True
                )
            )
            if touched:
                self.add_error(
                    "granted_groups",
                    f"{', '.join(touched)} is protected: grant or remove it on the group's "
                    "page, which opens a change request.",
                )
        for group in groups or ():
            for message in environment_guard_errors(
                group.name, group.environment, [(slug, environment)]
            ):
                self.add_error("granted_groups", message)
        return cleaned

    def _post_clean(self) -> None:
        # Project.clean judges a new label against the groups granted before this save;
        # this form judges it against the groups being saved (clean() above).
        judged = "granted_groups" in self.cleaned_data
        environment = self.cleaned_data.get("environment")
        before = list(self._errors.get("environment", [])) if judged else None
        super()._post_clean()
        if judged and "environment" in self._errors:
            if before:
                self._errors["environment"] = self.error_class(before)
            else:
                del self._errors["environment"]
                self.cleaned_data["environment"] = environment
