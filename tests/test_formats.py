"""Output formats: what we write is read back exactly by sh, python-dotenv and import_env."""

from __future__ import annotations

import io
import subprocess

import pytest
from dotenv import dotenv_values
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from orgenv.configuration import dotenv as import_env_parser
from orgenv.formats import environment_payload, render, render_dotenv, render_shell
from orgenv.resolution import Conflict, Resolution, Resolved

# Any text a variable may hold: everything but NUL (README "Names and values") and lone
# surrogates (not UTF-8).
values = st.text(st.characters(blacklist_categories=["Cs"], blacklist_characters="\x00"))

TRICKY = {
    "EMPTY": "",
    "QUOTES": "it's \"quoted\" ''",
    "DOLLAR": "$HOME ${HOME} $(id) `id`",
    "BACKSLASH": "a\\b\\\\c\\n\\'\\",
    "MULTI": "line one\nline two\r\n\ttabbed\n",
    "SPACES": "  padded  ",
    "HASH": "a #not a comment",
    "UNICODE": "café ☕ \u2028 end",
    "EQUALS": "a=b=c",
}


def sh_values(script: str, names: list[str]) -> dict[str, str]:
    """Source `script` in /bin/sh and read each variable back, NUL-separated."""
    printf = " ".join(f'"${name}"' for name in names)
    out = subprocess.run(
        ["/bin/sh", "-c", f'. /dev/stdin; printf "%s\\0" {printf}'],
        input=script.encode(),
        capture_output=True,
        check=True,
    ).stdout
    return dict(zip(names, out.decode().split("\0")[: len(names)], strict=True))


def test_the_shell_format_exports_tricky_values_exactly():
    script = render_shell(TRICKY)
    assert sh_values(script, list(TRICKY)) == TRICKY
    assert script.startswith("export EMPTY=''\nexport QUOTES='it'\\''s")


def test_the_shell_format_exports_the_variables_to_child_processes():
    script = render_shell({"A_VAR": "x y"})
    out = subprocess.run(
        ["/bin/sh", "-c", ". /dev/stdin; /bin/sh -c 'printf %s \"$A_VAR\"'"],
        input=script.encode(),
        capture_output=True,
        check=True,
    ).stdout
    assert out == b"x y"


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(value=values)
def test_the_shell_format_round_trips_any_value_through_sh(value):
    assert sh_values(render_shell({"V": value}), ["V"]) == {"V": value}


def test_the_dotenv_format_is_double_quoted_with_escapes():
    assert render_dotenv({"A": 'say "hi"\\n\nnext'}) == 'A="say \\"hi\\"\\\\n\\nnext"\n'


def test_the_dotenv_format_reads_back_identically_with_python_dotenv_and_import_env():
    text = render_dotenv(TRICKY)
    assert dict(dotenv_values(stream=io.StringIO(text), interpolate=False)) == TRICKY
    parsed = import_env_parser.parse(text)
    assert {entry.name: entry.value for entry in parsed} == TRICKY


@settings(max_examples=200, deadline=None)
@given(variables=st.dictionaries(st.from_regex(r"[A-Z_][A-Z0-9_]{0,8}", fullmatch=True), values))
def test_the_dotenv_format_round_trips_any_values(variables):
    text = render_dotenv(variables)
    assert dict(dotenv_values(stream=io.StringIO(text), interpolate=False)) == variables
    assert {e.name: e.value for e in import_env_parser.parse(text)} == variables


def test_the_json_payload_has_exactly_the_spec_keys_and_hides_what_it_is_told_to():
    resolution = Resolution(
        {
            "A": Resolved("A", "enc-a", False, "group:shared"),
            "S": Resolved("S", "enc-s", True, "project"),
        },
        [Conflict("A", "group:shared", ("group:zeta",))],
    )
    payload = environment_payload(
        organization="acme", project="web", resolution=resolution, values={"A": "1", "S": None}
    )
    assert payload == {
        "organization": "acme",
        "project": "web",
        "variables": {"A": "1", "S": None},
        "secrets": ["S"],
        "sources": {"A": "group:shared", "S": "project"},
        "conflicts": [{"name": "A", "winner": "group:shared", "shadowed": ["group:zeta"]}],
    }


def test_an_unknown_format_is_refused_naming_the_allowed_ones():
    with pytest.raises(ValueError, match="use one of json, dotenv, shell"):
        render("yaml", {"variables": {}})


@settings(max_examples=100, deadline=None)
@given(variables=st.dictionaries(st.from_regex(r"[A-Z_][A-Z0-9_]{0,8}", fullmatch=True), values))
def test_the_runner_cli_renders_exactly_as_the_server(variables):
    # orgenv.runner.cli keeps a standard-library copy of these renderings; they must not drift.
    from orgenv.runner import cli

    environment = cli.Environment("acme", "web", variables, [], "1", {"variables": variables})
    assert cli.render("dotenv", environment) == render_dotenv(variables)
    assert cli.render("shell", environment) == render_shell(variables)
