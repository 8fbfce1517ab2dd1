"""Configuration as code: the YAML file of README "Management commands", read with line
numbers, validated whole, then applied in one transaction.

Three steps, each usable alone:

- `load(text, filename)` (loading.py) parses YAML with a loader that remembers the line of
  every key and list item, so each error reads `FILE:LINE: path: problem`;
- `validate(data, filename)` (validation.py) checks the WHOLE file against the format, the name
  and value rules, the database (users, projects, teams that must exist) and the environment
  guard, and returns a `Config` or raises `ConfigInvalid` with every error — nothing written;
- `apply(config, prune=...)` (applying.py) makes the database match inside one transaction,
  through orgenv.services, and returns counts (never values).

What the file does not mention is left alone: an absent key keeps the current value (or the
model default for a new row), an absent list is not managed, an absent `secret:` keeps an
existing variable's flag. `prune` deletes only what a *listed* group or project no longer
lists: variables of listed groups that give a `variables` list, grants (projects, teams) of
listed groups that give a `projects`/`teams` list, and project variables of listed projects
that give a `variables` list. It never deletes organizations, projects, teams, groups,
memberships or team/project members: those are too costly to lose to a typo.
"""

from __future__ import annotations

from collections.abc import Mapping

from .applying import Summary, apply
from .loading import ConfigError, ConfigInvalid, load, max_bytes
from .validation import Config, validate

__all__ = ["Config", "ConfigError", "ConfigInvalid", "Summary", "apply", "load", "read", "validate"]


def read(path: str, *, prune: bool = False, environ: Mapping[str, str] | None = None) -> Config:
    """Load and validate a file; an unreadable file is a one-line ConfigInvalid too."""
    limit = max_bytes()
    try:
        with open(path, encoding="utf-8") as handle:
            # Never more than the limit in memory, whatever the size of the file.
            text = handle.read(limit + 1)
    except (OSError, UnicodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise ConfigInvalid(
            [ConfigError(path, 1, "", f"cannot read the file: {reason}.")]
        ) from None
    if len(text) > limit or len(text.encode()) > limit:
        raise ConfigInvalid(
            [
                ConfigError(
                    path,
                    1,
                    "",
                    f"the file is larger than {limit} bytes (CONFIG_MAX_BYTES); split it, "
                    "for example one file per organization.",
                )
            ]
        )
    return validate(load(text, path), path, prune=prune, environ=environ)
