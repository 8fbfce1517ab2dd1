"""Configuration as code (`apply_config`): the YAML file read with line numbers (`load`,
loading.py), validated whole against the format, the rules and the database (`validate`,
validation.py: every error at once, nothing written), then applied in one transaction through
orgenv.services (`apply`, applying.py). What the file leaves out is left alone; what `--prune`
may delete is in docs/commands.md."""

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
