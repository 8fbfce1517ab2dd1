"""The dotenv parser of import_env: a table of inputs and what they mean."""

from __future__ import annotations

import io

import pytest
from dotenv import dotenv_values

from orgenv.configuration.dotenv import DotenvError, parse

CASES = [
    # (what, file text, expected [(name, value), …])
    ("a plain assignment", "A=b\n", [("A", "b")]),
    ("no newline at the end", "A=b", [("A", "b")]),
    ("an empty value", "A=\n", [("A", "")]),
    ("spaces around = and the value", "A = b c \n", [("A", "b c")]),
    ("an export prefix", "export A=b\n", [("A", "b")]),
    ("a variable named export", "export=1\n", [("export", "1")]),
    ("blank lines and full-line comments", "\n# c\n  # indented\n\nA=b\n\n", [("A", "b")]),
    ("an inline comment after an unquoted value", "A=b # note\n", [("A", "b")]),
    ("a # inside an unquoted word", "A=b#c\n", [("A", "b#c")]),
    ("a value that starts with #", "A=#b\n", [("A", "#b")]),
    ("a comment after spaces is an empty value", "A= # note\n", [("A", "")]),
    ("single quotes are literal", r"A='x \n $y \"'" "\n", [("A", r"x \n $y \"")]),
    ("a # inside single quotes", "A='b # c'\n", [("A", "b # c")]),
    ("double-quote escapes", r'A="1\n2\t3\"4\\5\$6"' "\n", [("A", '1\n2\t3"4\\5$6')]),
    ("an unknown escape is kept", r'A="C:\path"' "\n", [("A", r"C:\path")]),
    ("a comment after a closing quote", 'A="b" # note\n', [("A", "b")]),
    (
        "a multi-line double-quoted value",
        'A="line 1\nline 2"\nB=c\n',
        [("A", "line 1\nline 2"), ("B", "c")],
    ),
    (
        "a multi-line single-quoted value",
        "A='-----BEGIN-----\nabc\n-----END-----'\n",
        [("A", "-----BEGIN-----\nabc\n-----END-----")],
    ),
    ("an empty quoted value", "A=''\nB=\"\"\n", [("A", ""), ("B", "")]),
    ("quotes inside an unquoted value", 'A=it\'s "fine"\n', [("A", 'it\'s "fine"')]),
    ("no interpolation", "A=$HOME ${USER}\n", [("A", "$HOME ${USER}")]),
    ("an = inside the value", "A=b=c\n", [("A", "b=c")]),
    ("Windows line endings", "A=b\r\nB='c\r\nd'\r\n", [("A", "b"), ("B", "c\nd")]),
    ("a byte order mark", "\ufeffA=b\n", [("A", "b")]),
    ("unicode values", "A=héllo wörld ✓\n", [("A", "héllo wörld ✓")]),
]


@pytest.mark.parametrize(("what", "text", "expected"), CASES, ids=[c[0] for c in CASES])
def test_it_parses(what, text, expected):
    assert [(e.name, e.value) for e in parse(text)] == expected


def test_each_entry_knows_the_line_it_starts_on():
    entries = parse("# header\nA=1\nB='x\ny'\n\nC=3\n")
    assert [(e.name, e.line) for e in entries] == [("A", 2), ("B", 3), ("C", 6)]


BAD = [
    # (what, file text, line, words the message must contain)
    ("a line without =", "A=1\nJUST_A_NAME\n", 2, "no '='"),
    ("a line that is not an assignment", "A=1\n=value\n", 2, "expected NAME=value"),
    (
        "an unclosed double quote",
        'A=1\nB="never closed\nC=3\n',
        2,
        "double-quoted value of B is never closed",
    ),
    ("an unclosed single quote", "A='open\n", 1, "single-quoted value of A is never closed"),
    (
        "text after a closing quote",
        'A=1\nB="x" y\n',
        2,
        "unexpected text after the closing double quote of B",
    ),
]


@pytest.mark.parametrize(("what", "text", "line", "words"), BAD, ids=[c[0] for c in BAD])
def test_it_reports_the_line_of_a_bad_entry(what, text, line, words):
    with pytest.raises(DotenvError) as caught:
        parse(text, "app.env")
    [problem] = caught.value.problems
    assert problem.line == line
    assert words in problem.message
    assert str(caught.value).startswith(f"app.env:{line}: ")


def test_it_reports_every_bad_line_not_only_the_first():
    with pytest.raises(DotenvError) as caught:
        parse("ONE\nA=1\nTWO\n")
    assert [p.line for p in caught.value.problems] == [1, 3]


def test_messages_never_quote_a_value():
    with pytest.raises(DotenvError) as caught:
        parse('TOKEN="hunter2-secret\n')
    assert "hunter2" not in str(caught.value)


# Where orgenv deliberately differs from python-dotenv (the reference implementation most
# .env files are written against): `\$` means a literal `$` (the issue asks for it), and CRLF
# inside a quoted value becomes LF (a file saved on Windows must not change a value).
DIFFERS_FROM_PYTHON_DOTENV = {"double-quote escapes", "Windows line endings"}


@pytest.mark.parametrize(("what", "text", "expected"), CASES, ids=[c[0] for c in CASES])
def test_it_agrees_with_python_dotenv_except_where_documented(what, text, expected):
    theirs = list(dotenv_values(stream=io.StringIO(text), interpolate=False).items())
    assert (theirs == expected) == (what not in DIFFERS_FROM_PYTHON_DOTENV)
