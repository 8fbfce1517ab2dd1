"""Output formats: what we write is read back exactly by sh, python-dotenv and import_env,
and by npm dotenv and Node's own reader where docs/cli.md "Dotenv readers" says so."""

from __future__ import annotations

import io
import json
import random
import subprocess
from pathlib import Path

import pytest
from dotenv import dotenv_values
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from orgenv.configuration import dotenv as import_env_parser
from orgenv.formats import (
    dotenv_single_quotable,
    environment_payload,
    render,
    render_dotenv,
    render_shell,
)
from orgenv.resolution import Conflict, Resolution, Resolved

# Any text a variable may hold: everything but NUL (docs/concepts.md "Names and values") and lone
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


def test_the_dotenv_format_single_quotes_values_every_reader_takes_literally():
    assert render_dotenv({"A": 'say "hi"\\n\tnext\n$HOME'}) == "A='say \"hi\"\\n\tnext\n$HOME'\n"


def test_the_dotenv_format_double_quotes_with_escapes_what_single_quotes_cannot_hold():
    assert render_dotenv({"A": "it's", "B": "a\r\n", "C": "a\\\\b", "D": "end\\"}) == (
        'A="it\'s"\nB="a\\r\\n"\nC="a\\\\\\\\b"\nD="end\\\\"\n'
    )


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


# --- the dotenv format read by Node: npm dotenv, util.parseEnv and --env-file ------------

CONSUMERS = Path(__file__).resolve().parent / "consumers"
# Every character that quoting, escaping or line handling could trip on, and some others.
ALPHABET = "'\"\\\t\n\r $#=`{}ab é☕"


def node_values(reader: str, path: Path, names: list[str]) -> dict[str, str]:
    """The variables a Node reader takes from the dotenv file at `path` (tests/consumers)."""
    if reader == "env-file":
        command = ["node", f"--env-file={path}", CONSUMERS / "read.js", "env", *names]
    else:
        command = ["node", CONSUMERS / "read.js", reader, path]
    result = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr  # `make test` installs node and npm dotenv
    return json.loads(result.stdout)


def reader_rows(value: str) -> set[str]:
    """The readers docs/cli.md "Dotenv readers" promises read `value` exactly, by its row."""
    everyone = {"python-dotenv", "import_env", "dotenv", "parseEnv", "env-file"}
    if dotenv_single_quotable(value):
        return everyone
    if not any(char in value for char in '"\\\t\r'):
        return everyone  # double-quoted with `\n` escapes only, which Node also decodes
    if not any(char in value for char in '"\\\t'):
        return {"python-dotenv", "import_env", "dotenv"}  # npm dotenv decodes `\r` too
    return {"python-dotenv", "import_env"}


def test_each_dotenv_reader_reads_exactly_the_values_the_readme_promises(tmp_path):
    rng = random.Random(15)
    generated = {
        f"V{index}": "".join(rng.choice(ALPHABET) for _ in range(rng.randrange(0, 12)))
        for index in range(400)
    }
    variables = {**TRICKY, **generated, "PLAIN": "postgres://db:5432/app?x=1#y"}
    path = tmp_path / "environment.env"
    text = render_dotenv(variables)
    path.write_bytes(text.encode())
    read = {
        "python-dotenv": dict(dotenv_values(stream=io.StringIO(text), interpolate=False)),
        "import_env": {entry.name: entry.value for entry in import_env_parser.parse(text)},
        "dotenv": node_values("dotenv", path, list(variables)),
        "parseEnv": node_values("parseEnv", path, list(variables)),
        "env-file": node_values("env-file", path, list(variables)),
    }
    rows = {name: reader_rows(value) for name, value in variables.items()}
    # Every row of the table is exercised, the first one most.
    assert sum(dotenv_single_quotable(value) for value in variables.values()) > 100
    assert len({frozenset(row) for row in rows.values()}) == 3
    for reader, values in read.items():
        misread = [
            (name, variables[name], values.get(name))
            for name in variables
            if reader in rows[name] and values.get(name) != variables[name]
        ]
        assert not misread, (reader, misread[:5])
