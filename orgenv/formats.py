"""Output formats of a resolved environment: pure functions, text in and text out.

No Django import, no side effect: the API, `resolve_env` and the runner CLI (which must not
import Django) share them.

- json: the docs/api.md shape (`environment_payload` builds it);
- dotenv: `NAME='value'` lines where single quotes keep the value literal for every reader
  we know (python-dotenv, orgenv's own `import_env`, npm `dotenv`, Node's `--env-file` and
  `util.parseEnv`): no `'`, no carriage return (npm `dotenv` and Node turn it into a newline
  or drop it), no `\\\\` and no trailing `\\` (python-dotenv decodes `\\\\` and `\\'`
  even there). Other values are `NAME="value"`, with a backslash before backslashes and
  quotes and escapes for newline, return and tab, which python-dotenv and `import_env` read
  back unchanged (docs/cli.md "Dotenv readers" says who reads what). python-dotenv must be told
  `interpolate=False`: it expands `${…}` whatever the quoting, and no escape stops it.
  (docker's `--env-file` is not a dotenv parser: it keeps quotes as part of the value.)
- shell: `export NAME='value'` lines for POSIX sh: inside single quotes nothing is special,
  and a single quote is written `'\\''` (close, escaped quote, reopen).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from .resolution import Resolution

FORMATS = ("json", "dotenv", "shell")

# The escapes python-dotenv decodes inside double quotes, applied in one pass so that a
# backslash in the value can never combine with what follows it.
_DOTENV_ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r", "\t": "\\t"}
_DOTENV_TABLE = str.maketrans(_DOTENV_ESCAPES)


def dotenv_quote(value: str) -> str:
    if dotenv_single_quotable(value):
        return "'" + value + "'"
    return '"' + value.translate(_DOTENV_TABLE) + '"'


def dotenv_single_quotable(value: str) -> bool:
    """True when `'value'` reads back as `value` in every dotenv reader of the module doc."""
    return (
        "'" not in value and "\r" not in value and "\\\\" not in value and not value.endswith("\\")
    )


def shell_quote(value: str) -> str:
    return "'" + value.replace("'", "'\\''") + "'"


def render_dotenv(variables: Mapping[str, str]) -> str:
    """One `NAME='value'` (or `NAME="value"`) line per variable, in the mapping's order."""
    return "".join(f"{name}={dotenv_quote(value)}\n" for name, value in variables.items())


def render_shell(variables: Mapping[str, str]) -> str:
    """One `export NAME='value'` line per variable, safe to `.` in sh, dash or bash."""
    return "".join(f"export {name}={shell_quote(value)}\n" for name, value in variables.items())


def environment_payload(
    *,
    organization: str,
    project: str,
    resolution: Resolution,
    values: Mapping[str, str | None],
) -> dict[str, Any]:
    """The JSON shape of docs/api.md. `values` maps each resolved name to its
    plaintext, or to None where the caller may not see it."""
    return {
        "organization": organization,
        "project": project,
        "variables": {name: values[name] for name in resolution.variables},
        "secrets": resolution.secrets,
        "sources": resolution.sources,
        "conflicts": [c.as_dict() for c in resolution.conflicts],
    }


def spreadsheet_safe(text: str) -> str:
    """A CSV cell a spreadsheet will not run as a formula (CSV injection): a leading
    =, +, -, @, tab or return gets a quote in front."""
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def render_json(payload: Mapping[str, Any]) -> str:
    return json.dumps(payload, indent=2, ensure_ascii=False) + "\n"


def render(fmt: str, payload: Mapping[str, Any]) -> str:
    """Render a payload (environment_payload's shape) in one of FORMATS."""
    if fmt == "json":
        return render_json(payload)
    if fmt == "dotenv":
        return render_dotenv(payload["variables"])
    if fmt == "shell":
        return render_shell(payload["variables"])
    raise ValueError(f"Unknown format {fmt!r}: use one of {', '.join(FORMATS)}.")
