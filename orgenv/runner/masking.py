"""Replace secret values in a byte stream by `***`. Standard library only (the CLI imports it).

What is masked: every secret of 4 or more characters (shorter ones are not masked: they would
hide ordinary words and numbers everywhere), as UTF-8 bytes, and also these forms of it:

- each line of a multi-line secret (lines of 4 or more characters), and the whole secret with
  CRLF line ends, because programs print secrets line by line or through a Windows-style writer;
- base64 in the standard and URL-safe alphabets, with and without `=` padding, at each of the
  three alignments: `Authorization: Basic base64("user:" + secret)` encodes the secret from
  whatever byte offset the prefix leaves, so the characters that depend on the secret alone
  are matched (the one or two characters mixing in a neighbouring byte cannot be known);
- JSON string escaping: with and without `\\uXXXX` for non-ASCII, `\\/` for `/`, upper- or
  lower-case hex, and `<`, `>`, `&`, U+2028, U+2029 as `\\u` escapes (Go's encoder);
- URL encoding: everything encoded, `/` kept, `:@/+` kept, RFC 3986 sub-delimiters kept,
  JavaScript's `encodeURIComponent` set kept; space as `%20` or `+`; `%XX` or `%xx`;
- XML/HTML entities: `&amp; &lt; &gt;` with quotes left alone or written `&quot; &#x27;`,
  `&quot; &apos;` or `&#34; &#39;`, non-ASCII as is or as `&#NNN;`.

Several secrets may overlap (`abcd`, `bcde`): every byte covered by any occurrence of any form
is hidden, and overlapping occurrences become a single `***`. That makes "longest match first"
hold by construction and never leaves a piece of a secret next to the mask.

Matching costs the same whatever the number of secrets: the text is sampled every `step`
bytes (16 when every form has 19 bytes or more, less only when a shorter form needs it), and
each form is indexed by its 8-byte (or 4-byte) grams at `step` consecutive offsets near its
end, so that every occurrence of it covers one sampled gram at a known offset. Each sample is
one dictionary lookup done in C (`map` over a `memoryview`); only a sample that is a gram of
some form is checked, with `startswith`.

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
import re
import sys
from bisect import bisect_left
from collections.abc import Iterable
from itertools import compress, count, product
from typing import NamedTuple
from urllib.parse import quote, quote_plus

MASK = b"***"
MIN_SECRET_LENGTH = 4

# A secret made of these characters is written the same way by every encoder but base64.
_UNESCAPED = re.compile(r"[A-Za-z0-9_.~-]*")
_URL_SAFE_SETS = ("", "/", ":@/+", ":@/+!$&'()*,;=", "!'()*")
_HTML_QUOTES = ((None, None), ("&quot;", "&#x27;"), ("&quot;", "&apos;"), ("&#34;", "&#39;"))
_JSON_SHORT = {
    '"': '\\"',
    "\\": "\\\\",
    "\b": "\\b",
    "\f": "\\f",
    "\n": "\\n",
    "\r": "\\r",
    "\t": "\\t",
}
_JSON_HTML = frozenset("<>&\u2028\u2029")
_PERCENT_HEX = re.compile(rb"%[0-9A-F]{2}")


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
    forms |= _base64_forms(raw)
    if not _UNESCAPED.fullmatch(secret):
        forms |= _json_forms(secret)
        forms |= _url_forms(raw)
        forms |= _html_forms(secret)
    return {form for form in forms if len(form) >= MIN_SECRET_LENGTH}


def _base64_forms(raw: bytes) -> set[bytes]:
    forms = set()
    for encode in (base64.b64encode, base64.urlsafe_b64encode):
        for shift in (0, 1, 2):
            # With `shift` bytes before it, the first 0, 2 or 3 characters mix in those bytes.
            padded = encode(bytes(shift) + raw)[(0, 2, 3)[shift] :]
            unpadded = padded.rstrip(b"=")
            # Unpadded and followed by more data, the last character of a partial group mixes
            # in the next byte: only the characters before it belong to the secret alone.
            core = unpadded[:-1] if (shift + len(raw)) % 3 else unpadded
            forms |= {padded, unpadded, core}
    return forms


def _json_forms(secret: str) -> set[bytes]:
    return {
        _utf8(_json_escape(secret, ascii_only=a, slash=s, upper=u, html=h))
        for a, s, u, h in product((False, True), repeat=4)
    }


def _json_escape(text: str, *, ascii_only: bool, slash: bool, upper: bool, html: bool) -> str:
    """`text` as inside a JSON string, as one of the common encoders writes it."""
    hex_format = "\\u%04X" if upper else "\\u%04x"
    out = []
    for char in text:
        code = ord(char)
        if char in _JSON_SHORT:
            out.append(_JSON_SHORT[char])
        elif char == "/" and slash:
            out.append("\\/")
        elif code < 0x20 or (html and char in _JSON_HTML) or (ascii_only and code > 0x7F):
            if code > 0xFFFF:
                code -= 0x10000
                out.append(
                    hex_format % (0xD800 | code >> 10) + hex_format % (0xDC00 | code & 0x3FF)
                )
            else:
                out.append(hex_format % code)
        else:
            out.append(char)
    return "".join(out)


def _url_forms(raw: bytes) -> set[bytes]:
    forms = set()
    for safe in _URL_SAFE_SETS:
        for encoded in (quote(raw, safe=safe), quote_plus(raw, safe=safe)):
            upper = encoded.encode("ascii")
            forms |= {upper, _PERCENT_HEX.sub(lambda match: match.group().lower(), upper)}
    return forms


def _html_forms(secret: str) -> set[bytes]:
    escaped = secret.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    forms = set()
    for double, single in _HTML_QUOTES:
        text = escaped if double is None else escaped.replace('"', double).replace("'", single)
        forms |= {_utf8(text), text.encode("ascii", "xmlcharrefreplace")}
    return forms


class _Scan(NamedTuple):
    """Every `step`-th gram of `width` bytes (struct `code`), from each of `offsets`."""

    code: str
    width: int
    step: int
    offsets: tuple[int, ...]
    # gram (as a native integer) -> the forms holding it, each with the gram's offset in it
    # and the longer forms it begins (longest first)
    grams: dict[int, tuple[tuple[bytes, int, tuple[bytes, ...]], ...]]


# Sampling every `step` bytes, a form of length m >= step - 1 + width holds a whole sampled
# gram wherever it starts, at one of `step` consecutive offsets. The shortest form decides:
# (shortest form, gram width, step), the first that fits: the longest step, then the wider
# gram (fewer chance hits). One scan for all forms is never more samples than one per length.
_SCANS = ((23, 8, 16), (19, 4, 16), (15, 4, 12), (11, 4, 8), (7, 4, 4), (5, 4, 2), (4, 4, 1))
_CODES = {4: "I", 8: "Q"}


def _build_scan(forms: list[bytes]) -> _Scan | None:
    """The index of `forms` (sorted). Only the forms that begin with no other form are
    indexed; each carries the longer ones that begin with it (a base64 form and the same
    with its last character and padding, a JSON escape and its longer variants), checked
    only where it matched."""
    if not forms:
        return None
    longer: dict[bytes, list[bytes]] = {}
    current = None
    for form in forms:
        # Sorted, the forms beginning with `current` follow it, before any that does not.
        if current is not None and form.startswith(current):
            longer[current].append(form)
        else:
            current = form
            longer[form] = []
    shortest = min(map(len, longer))
    _, width, step = next(scan for scan in _SCANS if shortest >= scan[0])
    grams: dict[int, list[tuple[bytes, int, tuple[bytes, ...]]]] = {}
    for form, extensions in longer.items():
        extended = tuple(sorted(extensions, key=len, reverse=True))
        # The grams at the end of the form: text that merely starts like a secret (`ghp_`,
        # `eyJhbGciOi`, a shared prefix) is then rejected by the lookup, without Python.
        last = len(form) - width
        for offset in range(last - step + 1, last + 1):
            gram = int.from_bytes(form[offset : offset + width], sys.byteorder)
            grams.setdefault(gram, []).append((form, offset, extended))
    # A step shorter than the gram needs several interleaved passes of whole grams.
    offsets = tuple(range(0, width, step)) if step < width else (0,)
    frozen = {gram: tuple(places) for gram, places in grams.items()}
    return _Scan(_CODES[width], width, step, offsets, frozen)


class Masker:
    """Masks complete byte strings. `StreamMasker` builds on it for streams."""

    def __init__(self, secrets: Iterable[str]) -> None:
        forms: set[bytes] = set()
        for secret in secrets:
            forms |= secret_forms(secret)
        # Sorted so that the forms starting with some bytes are found by bisection.
        self.forms = sorted(forms)
        self.longest = max(map(len, self.forms), default=0)
        self._scan = _build_scan(self.forms)

    def spans(self, data: bytes) -> list[tuple[int, int]]:
        """Sorted, disjoint [start, end) ranges covered by occurrences of any form."""
        found: list[tuple[int, int]] = []
        record = found.append
        scan = self._scan
        if scan is None:
            return found
        view = memoryview(data)
        size = len(data)
        startswith = data.startswith
        width, grams = scan.width, scan.grams
        stride = max(scan.step, width)
        for first in scan.offsets:
            usable = (size - first) // width * width
            if usable <= 0:
                continue
            samples = view[first : first + usable].cast(scan.code)[:: stride // width]
            # The C loop: one dictionary lookup per sample, Python only for a hit.
            for index in compress(count(), map(grams.__contains__, samples)):
                position = first + index * stride
                for form, offset, extended in grams[samples[index]]:
                    start = position - offset
                    if start >= 0 and startswith(form, start):
                        end = start + len(form)
                        for extension in extended:
                            if startswith(extension, start):
                                end = start + len(extension)
                                break
                        record((start, end))
        found.sort()
        spans: list[tuple[int, int]] = []
        for start, end in found:
            if spans and start < spans[-1][1]:
                # Overlapping occurrences merge; merely adjacent ones stay apart so that the
                # result does not depend on where a stream was split.
                spans[-1] = (spans[-1][0], max(spans[-1][1], end))
            else:
                spans.append((start, end))
        return spans

    def mask(self, data: bytes) -> bytes:
        """`data` with every occurrence replaced by MASK."""
        return _replace(data, self.spans(data))

    def first_possible_start(self, data: bytes) -> int:
        """The first position p such that data[p:] is a proper prefix of some form, or len(data).

        Only the last `longest - 1` positions can qualify.
        """
        forms = self.forms
        for pos in range(max(0, len(data) - self.longest + 1), len(data)):
            tail = data[pos:]
            # The forms starting with `tail` follow it in sorted order: `tail` itself if it is
            # a form, then the longer ones.
            index = bisect_left(forms, tail)
            for form in forms[index : index + 2]:
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
