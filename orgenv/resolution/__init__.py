"""The pure heart of orgenv: no Django import, plain data in and out, table-tested.

- rules: precedence and reach (docs/concepts.md "Resolution");
- impact: what a proposed change does to every project (the impact preview);
- why: why a name reaches a project or not, and what would make it reach.
"""

from __future__ import annotations

from .rules import (
    PROJECT_SOURCE,
    REACH_ALL,
    REACH_SELECTED,
    REACH_TEAM,
    Conflict,
    Definition,
    GroupLayer,
    Reach,
    Resolution,
    Resolved,
    group_reach,
    group_source,
    resolve,
)

__all__ = [
    "PROJECT_SOURCE",
    "REACH_ALL",
    "REACH_SELECTED",
    "REACH_TEAM",
    "Conflict",
    "Definition",
    "GroupLayer",
    "Reach",
    "Resolution",
    "Resolved",
    "group_reach",
    "group_source",
    "resolve",
]
