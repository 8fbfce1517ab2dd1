"""The rules of docs/concepts.md "Names and values", shared by every write path."""

from __future__ import annotations

import re
from collections.abc import Iterable

from django.core.exceptions import ValidationError

NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
NAME_MAX_LENGTH = 255
RESERVED_PREFIX = "ORGENV_"
VALUE_MAX_BYTES = 65536
LABEL_RE = re.compile(r"[a-z0-9][a-z0-9_-]*")


def validate_variable_name(name: str) -> None:
    if not name:
        raise ValidationError("A variable name cannot be empty.", code="required")
    if len(name) > NAME_MAX_LENGTH:
        raise ValidationError(
            f"A variable name has at most {NAME_MAX_LENGTH} characters; this one has {len(name)}.",
            code="max_length",
        )
    if not NAME_RE.fullmatch(name):
        raise ValidationError(
            f"{name!r} is not a valid variable name: use letters, digits and underscores, "
            "not starting with a digit.",
            code="invalid_name",
        )
    if name.startswith(RESERVED_PREFIX):
        raise ValidationError(
            f"{name!r} starts with {RESERVED_PREFIX}, which is reserved for the runner's own "
            "variables.",
            code="reserved_name",
        )


# Names the dynamic loader, a shell or an interpreter reads as it starts: one such variable
# changes how every program of every runner of a project starts (LD_PRELOAD loads a library
# into each). An organization must allow them explicitly (Organization.allow_loader_names).
LOADER_NAMES = frozenset(
    {
        "LD_PRELOAD",
        "LD_LIBRARY_PATH",
        "LD_AUDIT",
        "BASH_ENV",
        "ENV",
        "PROMPT_COMMAND",
        "PYTHONSTARTUP",
        "PYTHONPATH",
        "NODE_OPTIONS",
        "PERL5OPT",
        "RUBYOPT",
        "JAVA_TOOL_OPTIONS",
    }
)
LOADER_PREFIXES = ("DYLD_",)


def is_loader_name(name: str) -> bool:
    return name in LOADER_NAMES or name.startswith(LOADER_PREFIXES)


def validate_loader_name(name: str, *, allowed: bool) -> None:
    """A runner-loader name is refused unless its organization allows them."""
    if is_loader_name(name) and not allowed:
        raise ValidationError(
            f"{name!r} changes how every program of every runner starts (the dynamic loader, "
            "a shell or an interpreter reads it at start-up): it is refused unless the "
            "organization allows runner-loader names.",
            code="loader_name",
        )


def validate_variable_value(value: str) -> None:
    # Messages never quote the value: it may be a secret.
    if "\x00" in value:
        raise ValidationError("A value cannot contain a NUL character.", code="nul")
    size = len(value.encode("utf-8", "surrogatepass"))
    if size > VALUE_MAX_BYTES:
        raise ValidationError(
            f"A value has at most {VALUE_MAX_BYTES:,} bytes of UTF-8; this one has {size:,}.",
            code="max_bytes",
        )


def validate_environment_label(label: str) -> None:
    if label and not LABEL_RE.fullmatch(label):
        raise ValidationError(
            f"{label!r} is not a valid environment label: use lower-case letters, digits, "
            "'-' and '_', starting with a letter or digit.",
            code="invalid_label",
        )


def guard_refuses(group_environment: str, project_environment: str) -> bool:
    """The environment guard: a labelled group reaches only projects with the same label."""
    return bool(group_environment) and project_environment != group_environment


def environment_guard_errors(
    group_name: str, group_environment: str, projects: Iterable[tuple[str, str]]
) -> list[str]:
    """Messages for each selected (slug, environment) project the group's label keeps out."""
    if not group_environment:
        return []
    return [
        f"Project {slug!r} is labelled {project_env or '(no environment)'!r} but group "
        f"{group_name!r} is labelled {group_environment!r}: a labelled group reaches only "
        "projects with the same label."
        for slug, project_env in projects
        if guard_refuses(group_environment, project_env)
    ]
