"""Each leak shape masked in the output of a real child process run by `orgenv run`.

The server is a stand-in answering the environment over real HTTP (tests/runner/test_cli.py);
the child computes each encoding itself from the variable it was given, the way a program that
leaks a secret would. The expected lines are computed here from the rule, not by the masker.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import math
import random
import sys
from urllib.parse import quote, quote_plus

import pytest

from tests.runner.test_cli import TOKEN, answer, orgenv, stand_in_server

# Characters that JSON, URLs and HTML all escape, a non-ASCII one, and bytes whose base64
# differs between the standard and URL-safe alphabets.
SECRET = "p@ss/wörd+\"<&>' ~?>x"
PEM = "-----BEGIN KEY-----\nMIIBOgIBAAJBAKj34\nGkxKsQ9kqTa1Pw==\n-----END KEY-----"
SHORT = "abc"


def run(code: str) -> bytes:
    """stdout of `orgenv run -- python -c code`, the child given SECRET, PEM and SHORT."""
    variables = {"SECRET": SECRET, "PEM": PEM, "SHORT": SHORT}
    body = json.dumps(
        {
            "organization": "acme",
            "project": "web",
            "variables": variables,
            "secrets": sorted(variables),
            "sources": {name: "project" for name in variables},
            "conflicts": [],
            "resolution_id": "r1",
        }
    ).encode()
    prelude = "import base64, html, json, os, sys, urllib.parse\ns = os.environ['SECRET']\n"
    with stand_in_server(answer(200, body)) as (url, _):
        result = orgenv(
            "run", "--url", url, "--token", TOKEN, "--", sys.executable, "-c", prelude + code
        )
    assert result.returncode == 0, result.stderr
    return result.stdout


def base64_masked(encode, prefix: bytes, suffix: bytes, *, padded: bool) -> bytes:
    """base64 of prefix + secret + suffix as masked: the characters that depend on the prefix
    (or the suffix) alone stay; from the first that depends on the secret alone to the last
    (to the end, padding included, when nothing follows) is `***`."""
    raw = SECRET.encode()
    encoded = encode(prefix + raw + suffix)
    if not padded:
        encoded = encoded.rstrip(b"=")
    head = math.ceil(len(prefix) * 8 / 6)
    if not suffix:
        return encoded[:head] + b"***"
    return encoded[:head] + b"***" + encoded[(len(prefix) + len(raw)) * 8 // 6 :]


ALIGNMENTS = [
    (b"user:", b""),
    (b"ab:", b""),
    (b"abcd:", b""),
    # A following byte whose high bits are not zero: with zeros, the mixed character would
    # also be the unpadded form's last one, and masked with it.
    (b"", b"|x"),
    (b"u:", b"|more"),
    (b"key:", b"|more"),
]


@pytest.mark.parametrize("alphabet", ["b64encode", "urlsafe_b64encode"])
@pytest.mark.parametrize("padded", [True, False])
def test_base64_at_each_alignment_is_masked_as_basic_auth_leaks_it(alphabet, padded):
    encode = getattr(base64, alphabet)
    raw = SECRET.encode()
    assert base64.b64encode(raw) != base64.urlsafe_b64encode(raw)  # both alphabets in play
    assert {len(prefix) % 3 for prefix, _ in ALIGNMENTS} == {0, 1, 2}
    code = "".join(
        f"print('Authorization: Basic', base64.{alphabet}({prefix!r} + s.encode() + {suffix!r})"
        f".decode(){'' if padded else '.rstrip(chr(61))'})\n"
        for prefix, suffix in ALIGNMENTS
    )
    lines = run(code).splitlines()
    expected = [
        b"Authorization: Basic " + base64_masked(encode, prefix, suffix, padded=padded)
        for prefix, suffix in ALIGNMENTS
    ]
    assert lines == expected


@pytest.mark.parametrize(
    "dump",
    [
        "json.dumps({'password': s})",
        "json.dumps({'password': s}, ensure_ascii=False)",
        # PHP and others write / as \/
        "json.dumps({'password': s}).replace('/', '\\\\/')",
        # upper-case hex digits in \\u00XX (and the <, > and & escapes of Go's encoder)
        "json.dumps({'password': s}).replace('\\\\u00f6', '\\\\u00F6')"
        ".replace('<', '\\\\u003C').replace('>', '\\\\u003E').replace('&', '\\\\u0026')",
    ],
)
def test_json_escapes_are_masked(dump):
    assert run(f"print({dump})") == b'{"password": "***"}\n'


@pytest.mark.parametrize(
    "encoded",
    [
        quote(SECRET, safe=":@/+"),
        quote(SECRET, safe=":@/+").lower(),  # only the %xx hex digits change: SECRET has no A-Z
        quote_plus(SECRET),
        quote(SECRET, safe=""),
    ],
)
def test_url_encodings_are_masked(encoded):
    assert "%" in encoded and encoded != SECRET
    code = f"print('GET /login?next=/home&password=' + {encoded!r} + '&x=1')"
    assert run(code) == b"GET /login?next=/home&password=***&x=1\n"


def test_a_url_encoding_that_leaves_colon_at_slash_and_plus_is_produced_by_the_child():
    code = "print(urllib.parse.quote(s, safe=':@/+'))"
    assert run(code) == b"***\n"


@pytest.mark.parametrize(
    "expression",
    [
        "html.escape(s)",
        "html.escape(s, quote=False)",
        "s.replace('&', '&amp;').replace('<', '&lt;').replace('>', '&gt;')"
        ".replace('\"', '&quot;').replace(\"'\", '&apos;')",
        "html.escape(s).encode('ascii', 'xmlcharrefreplace').decode()",
    ],
)
def test_xml_and_html_entities_are_masked(expression):
    code = f"print('<input value=\"' + {expression} + '\">')"
    assert run(code) == b'<input value="***">\n'
    assert html.escape(SECRET) != SECRET


def test_each_line_of_a_multi_line_secret_is_masked_on_its_own():
    code = (
        "for number, line in enumerate(os.environ['PEM'].splitlines()):\n    print(number, line)\n"
    )
    assert run(code) == b"0 ***\n1 ***\n2 ***\n3 ***\n"


def test_a_secret_shorter_than_four_characters_is_not_masked():
    assert run("print('short:', os.environ['SHORT'])") == b"short: abc\n"


def test_output_without_a_secret_passes_byte_for_byte():
    # Two megabytes of every byte value, near-misses of the secret, and no secret.
    code = (
        "import random\n"
        "rng = random.Random(15)\n"
        "out = sys.stdout.buffer\n"
        "for i in range(64):\n"
        "    out.write(rng.randbytes(32768))\n"
        "    out.write(s.encode()[: i % 19 + 1] + b'\\r\\n' + base64.b64encode(s.encode())[:20])\n"
    )
    out = run(code)
    rng = random.Random(15)
    expected = b"".join(
        rng.randbytes(32768)
        + SECRET.encode()[: i % 19 + 1]
        + b"\r\n"
        + base64.b64encode(SECRET.encode())[:20]
        for i in range(64)
    )
    assert len(out) == len(expected)
    assert hashlib.sha256(out).digest() == hashlib.sha256(expected).digest()
