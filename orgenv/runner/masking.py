"""Replace secret values in a byte stream by `***`. Standard library only (the CLI imports it).

What is masked: every secret of 4 or more characters, as UTF-8 bytes, and also

- each line of a multi-line secret (lines of 4 or more characters), and the whole secret with
  CRLF line ends, because programs print secrets line by line or through a Windows-style writer;
- its base64 (standard and URL-safe, with and without `=` padding) and URL-encoded forms
  (`quote` with and without `/` kept, `quote_plus`), because that is how secrets leak through
  HTTP debugging output and basic-auth headers;
- its JSON string escaping (`\\n`, `\\"`, `\\u00e4`), because programs log their configuration
  as JSON.

Several secrets may overlap (`abcd`, `bcde`): every byte covered by any occurrence of any form
is hidden, and overlapping occurrences become a single `***`. That makes "longest match first"
hold by construction and never leaves a piece of a secret next to the mask.

Streaming: a `StreamMasker` sees the output in arbitrary reads. Its output is byte for byte what
masking the whole stream at once would give, however the stream is split:

- `feed()` releases everything except the last `longest form - 1` bytes: no occurrence that is
  not yet complete can start before that point. If an occurrence already found straddles the
  point, it is held whole.
- `release_idle()` is for a stream that went quiet (a prompt, a progress line, a line followed
  by a long computation). It releases the held bytes up to the first position from which the
  held bytes could still grow into a secret (they are a prefix of some form). Bytes before that
  position cannot become part of any occurrence, whatever comes next, so releasing them is
  exact; a possible secret prefix stays held until more data or the end of the stream, because
  releasing `hunter` of `hunter2` would leak most of it.
- `close()` masks and releases the rest at the end of the stream.

Non-UTF-8 output passes through untouched: matching is on bytes.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterable
from urllib.parse import quote, quote_plus

MASK = b"***"
MIN_SECRET_LENGTH = 4


def secret_forms(secret: str) -> set[bytes]:
    """The byte strings that give `secret` away: the value, its lines and encodings."""
    if len(secret) < MIN_SECRET_LENGTH:
        return set()
    raw = _utf8(secret)
    forms = {raw}
    if "\n" in secret:
        forms.add(_utf8(secret.replace("\r\n", "\n").replace("\n", "\r\n")))
        for line in secret.splitlines():
            if len(line) >= MIN_SECRET_LENGTH:
                forms.add(_utf8(line))
    for encoded in (base64.b64encode(raw), base64.urlsafe_b64encode(raw)):
        forms.add(encoded)
        forms.add(encoded.rstrip(b"="))
    forms.add(quote(raw, safe="").encode("ascii"))
    forms.add(quote(raw).encode("ascii"))
    forms.add(quote_plus(raw).encode("ascii"))
    for ensure_ascii in (True, False):
        forms.add(_utf8(json.dumps(secret, ensure_ascii=ensure_ascii)[1:-1]))
    return {form for form in forms if len(form) >= MIN_SECRET_LENGTH}


class Masker:
    """Masks complete byte strings. `StreamMasker` builds on it for streams."""

    def __init__(self, secrets: Iterable[str]) -> None:
        forms: set[bytes] = set()
        for secret in secrets:
            forms |= secret_forms(secret)
        self.forms = sorted(forms, key=lambda form: (-len(form), form))
        self.longest = len(self.forms[0]) if self.forms else 0
        self._regex = _compile(self.forms) if self.forms else None
        self._by_first_byte: dict[int, list[bytes]] = {}
        for form in self.forms:
            self._by_first_byte.setdefault(form[0], []).append(form)

    def spans(self, data: bytes) -> list[tuple[int, int]]:
        """Sorted, disjoint [start, end) ranges covered by occurrences of any form."""
        if self._regex is None:
            return []
        spans: list[tuple[int, int]] = []
        pos = 0
        search = self._regex.search
        while (match := search(data, pos)) is not None:
            start, end = match.span()
            if spans and start < spans[-1][1]:
                # Overlapping occurrences merge; merely adjacent ones stay apart so that the
                # result does not depend on where a stream was split.
                spans[-1] = (spans[-1][0], max(spans[-1][1], end))
            else:
                spans.append((start, end))
            # Search again from the next byte, not from `end`: another form may start inside
            # this occurrence and reach beyond it.
            pos = start + 1
        return spans

    def mask(self, data: bytes) -> bytes:
        """`data` with every occurrence replaced by MASK."""
        return _replace(data, self.spans(data))

    def first_possible_start(self, data: bytes) -> int:
        """The first position p such that data[p:] is a proper prefix of some form, or len(data).

        Only the last `longest - 1` positions can qualify.
        """
        for pos in range(max(0, len(data) - self.longest + 1), len(data)):
            tail = data[pos:]
            for form in self._by_first_byte.get(data[pos], ()):
                if len(form) > len(tail) and form.startswith(tail):
                    return pos
        return len(data)


class StreamMasker:
    """Masks a stream fed in pieces; see the module docstring for the release rule."""

    def __init__(self, masker: Masker) -> None:
        self.masker = masker
        self._held = b""
        self._idle_checked = True

    @property
    def holding(self) -> bool:
        """True when bytes are held that an idle release might still let go."""
        return bool(self._held) and not self._idle_checked

    def feed(self, data: bytes) -> bytes:
        buffer = self._held + data
        self._idle_checked = False
        return self._release(buffer, len(buffer) - max(self.masker.longest - 1, 0))

    def release_idle(self) -> bytes:
        self._idle_checked = True
        return self._release(self._held, self.masker.first_possible_start(self._held))

    def close(self) -> bytes:
        buffer, self._held = self._held, b""
        self._idle_checked = True
        return self.masker.mask(buffer)

    def _release(self, buffer: bytes, cut: int) -> bytes:
        if cut <= 0:
            self._held = buffer
            return b""
        spans = self.masker.spans(buffer)
        for start, end in spans:
            if start < cut < end:
                cut = start
                break
        self._held = buffer[cut:]
        return _replace(buffer[:cut], [span for span in spans if span[1] <= cut])


_TRIE_DEPTH = 8
_ENDINGS = -1


def _compile(forms: list[bytes]) -> re.Pattern[bytes]:
    """One regex matching the longest form that starts at a position.

    The first bytes of the forms are laid out as a trie (`ab(?:cd(?:ef)?|xy)`) rather than a
    flat alternation: the regex engine then decides on one byte instead of trying every form
    at every position, about five times faster with a hundred secrets. Below _TRIE_DEPTH bytes
    the remaining endings are a flat alternation, longest first, which keeps the nesting (and
    so the recursion of this function and of the regex compiler) shallow whatever the forms.
    """
    trie: dict[int, dict] = {}
    for form in forms:
        node = trie
        for byte in form[:_TRIE_DEPTH]:
            node = node.setdefault(byte, {})
        node.setdefault(_ENDINGS, set()).add(form[_TRIE_DEPTH:])

    def emit(node: dict) -> bytes:
        endings = sorted(node.get(_ENDINGS, ()), key=lambda ending: (-len(ending), ending))
        branches = [re.escape(ending) for ending in endings if ending]
        for byte in sorted(key for key in node if key != _ENDINGS):
            child = node[byte]
            literal = bytearray([byte])
            while _ENDINGS not in child and len(child) == 1:
                ((following, child),) = child.items()
                literal.append(following)
            branches.append(re.escape(bytes(literal)) + emit(child))
        if not branches:
            return b""
        body = branches[0] if len(branches) == 1 else b"(?:" + b"|".join(branches) + b")"
        # A form ending exactly here is the shortest choice: greedy `?` tries the rest first.
        return b"(?:" + body + b")?" if b"" in endings else body

    return re.compile(emit(trie))


def _utf8(text: str) -> bytes:
    # surrogatepass: JSON may carry a lone surrogate; it must still be masked, not crash us.
    return text.encode("utf-8", "surrogatepass")


def _replace(data: bytes, spans: list[tuple[int, int]]) -> bytes:
    if not spans:
        return data
    pieces: list[bytes] = []
    pos = 0
    for start, end in spans:
        pieces.append(data[pos:start])
        pieces.append(MASK)
        pos = end
    pieces.append(data[pos:])
    return b"".join(pieces)
