"""apply_config's limits on untrusted files: size, density, nesting and alias expansion each
end fast with `FILE:LINE: problem`, while a large organization's file is read whatever its
number of entries, and checked in seconds."""

from __future__ import annotations

import time

import pytest
from django.core.management import CommandError, call_command

from orgenv import configuration
from orgenv.configuration import ConfigInvalid
from orgenv.configuration.loading import ALIAS_BUDGET, BYTES_PER_NODE, MAX_DEPTH, max_nodes
from orgenv.configuration.validation import MAX_ERRORS

# The 557-byte bomb of the report: nine levels of nine aliases (9^9 ≈ 387 million strings),
# the last used as a mapping key, which used to be turned into text.
BOMB = """\
organizations:
  - slug: acme
a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]
i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]
*i : boom
"""


def errors_of_file(tmp_path, text: str) -> list[str]:
    path = tmp_path / "c.yaml"
    path.write_text(text)
    with pytest.raises(ConfigInvalid) as caught:
        configuration.read(str(path), environ={})
    return [str(e).replace(str(tmp_path) + "/", "") for e in caught.value.errors]


def test_an_alias_bomb_used_as_a_key_is_refused_fast_with_its_line(tmp_path, db) -> None:
    started = time.monotonic()
    errors = errors_of_file(tmp_path, BOMB)
    assert time.monotonic() - started < 2
    assert errors == [
        f"c.yaml:12: aliases expand the file by more than {ALIAS_BUDGET} nodes; "
        "write the repeated part out instead."
    ]


def test_apply_config_reports_the_bomb_as_one_line_per_error(tmp_path, db) -> None:
    path = tmp_path / "bomb.yaml"
    path.write_text(BOMB)
    with pytest.raises(CommandError) as caught:
        call_command("apply_config", str(path))
    assert f"{path}:12: aliases expand the file" in str(caught.value)


def test_yaml_nested_300_levels_is_refused_with_its_line(tmp_path, db) -> None:
    nested = "organizations:\n" + "".join(f"{'  ' * i}- \n" for i in range(1, 300)) + "\n"
    errors = errors_of_file(tmp_path, nested)
    # The mapping of line 1 is level 1, the list starting on line N level N.
    assert errors == [f"c.yaml:{MAX_DEPTH + 1}: nested more than {MAX_DEPTH} levels deep."]
    flow = "organizations: " + "[" * 300 + "]" * 300 + "\n"
    assert errors_of_file(tmp_path, flow) == [
        f"c.yaml:1: nested more than {MAX_DEPTH} levels deep."
    ]


def test_aliases_within_the_budget_share_a_list_of_variables(tmp_path, world) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(
        "organizations:\n"
        "  - slug: acme\n"
        "    groups:\n"
        "      - name: a\n"
        "        variables: &common\n"
        "          - {name: REGION, value: eu-west-1}\n"
        "          - {name: BUCKET, value: s3://shared}\n"
        "      - name: b\n"
        "        variables: *common\n"
    )
    config = configuration.read(str(path), environ={})
    groups = config.organizations[0].groups
    assert [[v.name for v in g.variables] for g in groups] == [["REGION", "BUCKET"]] * 2


def test_a_file_past_the_size_limit_is_refused_before_parsing(tmp_path, settings, db) -> None:
    settings.CONFIG_MAX_BYTES = 100
    text = "organizations:\n  - slug: acme\n" + "# padding\n" * 10
    assert len(text.encode()) > 100
    assert errors_of_file(tmp_path, text) == [
        "c.yaml:1: the file is larger than 100 bytes (CONFIG_MAX_BYTES); split it, for "
        "example one file per organization."
    ]


def test_one_huge_list_denser_than_any_organization_is_refused_with_its_line(tmp_path, db) -> None:
    # 200,000 one-character entries in 600 KB: a node per 3 bytes, each ~0.4 KB once parsed.
    text = "organizations:\n  - slug: acme\n    projects: [" + ", ".join(["a"] * 200_000) + "]\n"
    size = len(text.encode())
    started = time.monotonic()
    errors = errors_of_file(tmp_path, text)
    assert time.monotonic() - started < 10  # about 0.3 s: refused on the parser's events
    budget = max_nodes(size)
    assert errors == [
        f"c.yaml:3: more than {budget} YAML values (scalars, lists and mappings) for a file of "
        f"{size} bytes: an organization's file holds at most one per {BYTES_PER_NODE} bytes "
        "(export_config writes about one per 12), so this one is padded or generated, not a "
        "configuration."
    ]


def test_a_large_real_organization_is_read_whatever_its_number_of_entries(tmp_path, world):
    # 300 projects and 120 groups of 250 variables: 36,000 list entries, past the fixed limit
    # of 25,000 there used to be; no setting changed.
    lines = ["organizations:", "  - slug: acme", "    projects:"]
    lines += [f"      - {{slug: p{p:03d}, environment: staging}}" for p in range(300)]
    lines.append("    groups:")
    for g in range(120):
        granted = ", ".join(f"p{p:03d}" for p in range(g % 5, 300, 5))
        lines += [f"      - name: g{g}", f"        projects: [{granted}]", "        variables:"]
        lines += [f"          - {{name: VAR_{i}, value: v{i}}}" for i in range(250)]
    path = tmp_path / "big.yaml"
    path.write_text("\n".join(lines) + "\n")
    config = configuration.read(str(path), environ={})
    organization = config.organizations[0]
    assert len(organization.projects) == 300
    assert sum(len(g.variables) for g in organization.groups) == 30_000


def test_a_file_of_a_million_wrong_entries_lists_its_first_thousand_errors(tmp_path, world):
    text = "organizations:\n  - slug: acme\n    groups:\n      - name: g\n        projects: ["
    text += ", ".join(f"missing{i}" for i in range(5_000)) + "]\n"
    errors = errors_of_file(tmp_path, text)
    assert len(errors) == MAX_ERRORS
    with pytest.raises(ConfigInvalid) as caught:
        configuration.read(str(tmp_path / "c.yaml"), environ={})
    assert caught.value.more == 5_000 - MAX_ERRORS
    assert str(caught.value).endswith(
        f"… and {5_000 - MAX_ERRORS} more errors (only the first {MAX_ERRORS} are listed)."
    )


def test_twenty_thousand_variables_are_checked_in_seconds(tmp_path, world) -> None:
    lines = ["organizations:", "  - slug: acme", "    groups:"]
    for g in range(100):
        lines += [f"      - name: g{g}", "        projects: [web]", "        variables:"]
        lines += [
            f"          - {{name: VAR_{g}_{i}, value: value-{i}-of-a-typical-length, "
            f"secret: {'true' if i % 2 else 'false'}}}"
            for i in range(200)
        ]
    path = tmp_path / "big.yaml"
    path.write_text("\n".join(lines) + "\n")
    started = time.monotonic()
    config = configuration.read(str(path), environ={})
    elapsed = time.monotonic() - started
    assert sum(len(g.variables) for g in config.organizations[0].groups) == 20_000
    # About 1.5 s on the 2-core CI machine; the quadratic version took minutes.
    assert elapsed < 15, f"checking 20,000 variables took {elapsed:.1f} s"


def test_an_alias_inside_its_own_anchor_is_refused(tmp_path, db) -> None:
    assert errors_of_file(tmp_path, "organizations: &loop [*loop]\n") == [
        "c.yaml:1: an alias refers to a list or mapping that contains it."
    ]
