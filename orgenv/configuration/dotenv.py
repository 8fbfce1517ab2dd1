"""A dotenv parser for import_env: pure, no Django, every problem reported with its line.

The accepted syntax is the common ground of docker compose, python-dotenv and shells:

- blank lines and full-line `#` comments; an optional `export ` prefix;
- `NAME=value`, with optional spaces around `=`;
- unquoted values run to the end of the line, trimmed; ` #` (a `#` after whitespace) starts a
  comment, while `#` inside a word (`a#b`) is part of the value;
- single-quoted values are literal, may span lines, and know no escapes;
- double-quoted values may span lines and understand `\\n \\t \\r \\" \\\\ \\$` (any other
  backslash is kept as written);
- after a closing quote only whitespace and a comment may follow.

Nothing is interpolated: `$OTHER` stays as written, which is why `\\$` exists only as a
courtesy for files written for tools that do interpolate. Messages never quote a value.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_NAME = re.compile(r"[^\s=#]+")
_EXPORT = re.compile(r"export[ \t]+")
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", '"': '"', "\\": "\\", "$": "$"}


@dataclass(frozen=True)
class Entry:
    name: str
    value: str
    line: int


@dataclass(frozen=True)
class Problem:
    line: int
    message: str

    def format(self, filename: str) -> str:
        return f"{filename}:{self.line}: {self.message}"


class DotenvError(Exception):
    """Every bad line of a file; str() gives one line per problem."""

    def __init__(self, filename: str, problems: list[Problem]) -> None:
        self.filename = filename
        self.problems = problems
        super().__init__("\n".join(p.format(filename) for p in problems))


class _Scanner:
    def __init__(self, text: str) -> None:
        self.text = text.removeprefix("\ufeff").replace("\r\n", "\n").replace("\r", "\n")
        self.pos = 0
        self.line = 1

    def at_end(self) -> bool:
        return self.pos >= len(self.text)

    def rest_of_line(self) -> str:
        end = self.text.find("\n", self.pos)
        end = len(self.text) if end < 0 else end
        chunk = self.text[self.pos : end]
        self.pos = end
        return chunk

    def next_line(self) -> None:
        self.rest_of_line()
        if not self.at_end():
            self.pos += 1
            self.line += 1

    def skip_blanks(self) -> None:
        while not self.at_end() and self.text[self.pos] in " \t":
            self.pos += 1

    def read_quoted(self, quote: str) -> str | None:
        """The value between quotes (cursor just after the opening one), or None if unclosed."""
        out: list[str] = []
        text = self.text
        while self.pos < len(text):
            char = text[self.pos]
            if char == quote:
                self.pos += 1
                return "".join(out)
            if char == "\\" and quote == '"' and self.pos + 1 < len(text):
                following = text[self.pos + 1]
                if following in _ESCAPES:
                    out.append(_ESCAPES[following])
                    self.pos += 2
                    continue
            if char == "\n":
                self.line += 1
            out.append(char)
            self.pos += 1
        return None


def _unquoted(raw: str, *, spaced: bool) -> str:
    # A comment starts at a `#` preceded by whitespace.
    if spaced and raw.startswith("#"):
        return ""
    match = re.search(r"[ \t]#", raw)
    if match:
        raw = raw[: match.start()]
    return raw.strip(" \t")


def parse(text: str, filename: str = "<dotenv>") -> list[Entry]:
    """Entries in file order, or DotenvError listing every bad line."""
    scan = _Scanner(text)
    entries: list[Entry] = []
    problems: list[Problem] = []
    while not scan.at_end():
        scan.skip_blanks()
        start_line = scan.line
        if scan.at_end():
            break
        if scan.text[scan.pos] in "\n#":
            scan.next_line()
            continue
        export = _EXPORT.match(scan.text, scan.pos)
        if export:
            scan.pos = export.end()
        name_match = _NAME.match(scan.text, scan.pos)
        if not name_match:
            problems.append(Problem(start_line, "expected NAME=value."))
            scan.next_line()
            continue
        name = name_match.group()
        scan.pos = name_match.end()
        scan.skip_blanks()
        if scan.at_end() or scan.text[scan.pos] != "=":
            problems.append(
                Problem(start_line, f"expected NAME=value, found no '=' after {name!r}.")
            )
            scan.next_line()
            continue
        scan.pos += 1
        after_equals = scan.pos
        scan.skip_blanks()
        opening = scan.text[scan.pos] if not scan.at_end() else ""
        if opening in ("'", '"'):
            scan.pos += 1
            value = scan.read_quoted(opening)
            kind = "single" if opening == "'" else "double"
            if value is None:
                problems.append(
                    Problem(start_line, f"the {kind}-quoted value of {name} is never closed.")
                )
                break  # everything after an unclosed quote belongs to it
            trailing = scan.rest_of_line().strip(" \t")
            if trailing and not trailing.startswith("#"):
                problems.append(
                    Problem(
                        scan.line,
                        f"unexpected text after the closing {kind} quote of {name}; "
                        "quote the whole value or put a '#' before a comment.",
                    )
                )
        else:
            # `A=#x` is the value "#x"; `A= #x` is an empty value and a comment.
            spaced = scan.pos > after_equals
            value = _unquoted(scan.rest_of_line(), spaced=spaced)
        entries.append(Entry(name, value, start_line))
        scan.next_line()
    if problems:
        raise DotenvError(filename, problems)
    return entries
