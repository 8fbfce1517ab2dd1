"""orgenv.runner.masking: pure unit tests, no database, no Django."""

from __future__ import annotations

import base64
from urllib.parse import quote, quote_plus

from hypothesis import given, settings
from hypothesis import strategies as st

from orgenv.runner.masking import Masker, StreamMasker


def mask(secrets: list[str], text: bytes) -> bytes:
    return Masker(secrets).mask(text)


def stream(secrets: list[str], pieces: list[bytes], *, idle_after: set[int] = frozenset()) -> bytes:
    """Feed `pieces` one by one, calling release_idle() after the indexes in `idle_after`."""
    masker = StreamMasker(Masker(secrets))
    out = []
    for index, piece in enumerate(pieces):
        out.append(masker.feed(piece))
        if index in idle_after:
            out.append(masker.release_idle())
    out.append(masker.close())
    return b"".join(out)


def test_it_masks_a_secret_wherever_it_appears():
    assert mask(["hunter2!"], b"pw=hunter2! and again hunter2!\n") == b"pw=*** and again ***\n"


def test_it_leaves_values_shorter_than_four_characters_alone():
    assert mask(["abc", "x"], b"abc x abcd") == b"abc x abcd"


def test_a_four_character_secret_is_masked():
    assert mask(["abcd"], b"abc abcd") == b"abc ***"


def test_a_secret_equal_to_a_common_word_is_still_masked():
    # Over-masking "hidden" in prose is the price of never printing the value.
    assert mask(["hidden"], b"the hidden value is hidden") == b"the *** value is ***"


def test_each_line_of_a_multi_line_secret_is_masked_on_its_own():
    key = "-----BEGIN KEY-----\nMIIBOgIBAAJBAK\nab\n-----END KEY-----"
    text = b"line 2 is MIIBOgIBAAJBAK; ab stays because it is short\n"
    assert mask([key], text) == b"line 2 is ***; ab stays because it is short\n"
    assert mask([key], key.encode() + b"\n") == b"***\n"


def test_a_multi_line_secret_printed_with_crlf_is_masked_whole():
    assert mask(["first line\nsecond line"], b"<first line\r\nsecond line>") == b"<***>"


def test_overlapping_secrets_are_masked_longest_first_without_leaving_pieces():
    secrets = ["abcd", "abcdef", "bcde"]
    assert mask(secrets, b"[abcdef]") == b"[***]"
    assert mask(secrets, b"[abcde]") == b"[***]"  # abcd and bcde overlap: one mask
    assert mask(secrets, b"[abcdx]") == b"[***x]"
    assert mask(secrets, b"[xbcde]") == b"[x***]"
    assert mask(secrets, b"abcd abcd") == b"*** ***"


def test_base64_and_url_encoded_forms_are_masked():
    secret = "p@ss w/rd+?~>"  # characters that differ between the encodings
    raw = secret.encode()
    forms = [
        base64.b64encode(raw),
        base64.b64encode(raw).rstrip(b"="),
        base64.urlsafe_b64encode(raw),
        base64.urlsafe_b64encode(raw).rstrip(b"="),
        quote(secret, safe="").encode(),
        quote(secret).encode(),
        quote_plus(secret).encode(),
    ]
    assert len(set(forms)) == 7  # the chosen secret really exercises seven distinct forms
    for form in forms:
        assert mask([secret], b"<" + form + b">") == b"<***>", form


def test_a_secret_escaped_in_json_is_masked():
    import json

    secret = 'pä"ss\nw0rd!'
    for ensure_ascii in (True, False):
        logged = json.dumps({"password": secret}, ensure_ascii=ensure_ascii).encode()
        assert mask([secret], logged) == b'{"password": "***"}'


def test_a_padded_base64_form_is_masked_with_its_padding():
    secret = "abcde"  # base64 YWJjZGU= : the padded form is the longer match
    assert mask([secret], b"Authorization: Basic YWJjZGU=\n") == b"Authorization: Basic ***\n"


def test_non_ascii_secrets_are_matched_as_utf8():
    assert mask(["pässwörd"], "x pässwörd y".encode()) == b"x *** y"


def test_bytes_that_are_not_utf8_pass_through():
    text = b"\xff\xfe garbage \xc3( then secret1 \x80"
    assert mask(["secret1"], text) == b"\xff\xfe garbage \xc3( then *** \x80"


def test_without_secrets_everything_passes_through():
    assert mask([], b"anything") == b"anything"
    assert stream([], [b"any", b"thing"]) == b"anything"


def test_a_secret_split_at_every_position_is_still_masked():
    secrets = ["abcd", "abcdef", "bcde", "multi\nline secret"]
    text = b"xx abcdef yy abcde zz multi\nline secret ww bcde."
    expected = mask(secrets, text)
    assert b"bcd" not in expected and b"line secret" not in expected
    for cut in range(len(text) + 1):
        assert stream(secrets, [text[:cut], text[cut:]]) == expected, cut
        assert stream(secrets, [text[:cut], text[cut:]], idle_after={0}) == expected, cut


def test_a_secret_fed_one_byte_at_a_time_is_masked():
    text = b"token=abcdef!"
    pieces = [text[i : i + 1] for i in range(len(text))]
    assert stream(["abcdef"], pieces) == b"token=***!"
    assert stream(["abcdef"], pieces, idle_after=set(range(len(text)))) == b"token=***!"


def test_feed_holds_back_only_what_could_still_become_a_secret():
    masker = StreamMasker(Masker(["abcdef"]))
    # Its longest form is base64 after one byte, padded: base64(b"?abcdef") without its first
    # two characters, "FiY2RlZg==".
    assert masker.masker.longest == len("FiY2RlZg==")
    assert masker.feed(b"hello world\n") == b"hel"  # the last 9 bytes are held
    assert masker.holding


def test_an_idle_stream_releases_what_cannot_start_a_secret():
    masker = StreamMasker(Masker(["abcdef"]))
    masker.feed(b"hello world\n")
    assert masker.release_idle() == b"lo world\n"
    assert not masker.holding


def test_an_idle_stream_keeps_a_possible_secret_prefix_until_more_data():
    masker = StreamMasker(Masker(["abcdef"]))
    released = masker.feed(b"password: abc")
    released += masker.release_idle()
    assert released == b"password: "
    assert masker.feed(b"def\n") + masker.close() == b"***\n"


def test_a_held_prefix_that_turns_out_harmless_is_released_at_the_end():
    masker = StreamMasker(Masker(["abcdef"]))
    out = masker.feed(b"abc") + masker.release_idle() + masker.close()
    assert out == b"abc"


secret_text = st.text(alphabet="abc\n=+/", min_size=1, max_size=8)


@settings(max_examples=300, deadline=None)
@given(
    secrets=st.lists(secret_text, max_size=4),
    text=st.binary(max_size=60) | st.text(alphabet="abc\n=+/xy", max_size=60).map(str.encode),
    cuts=st.lists(st.integers(0, 60), max_size=6),
    idle=st.sets(st.integers(0, 6)),
)
def test_streaming_gives_exactly_what_masking_the_whole_output_gives(secrets, text, cuts, idle):
    bounds = sorted({0, len(text), *(c for c in cuts if c <= len(text))})
    pieces = [text[a:b] for a, b in zip(bounds, bounds[1:], strict=False)]
    assert stream(secrets, pieces, idle_after=idle) == mask(secrets, text)


@settings(max_examples=200, deadline=None)
@given(secret=st.text(min_size=4, max_size=12), before=st.binary(max_size=8))
def test_no_secret_of_four_or_more_characters_survives_masking(secret, before):
    out = mask([secret], before + secret.encode("utf-8", "surrogatepass") + before)
    assert secret.encode("utf-8", "surrogatepass") not in out


def test_many_secrets_sharing_a_long_prefix_are_masked_longest_first():
    secrets = ["a" * n for n in range(4, 300)] + ["aaaaaaaaaab"]
    assert mask(secrets, b"<" + b"a" * 250 + b">") == b"<***>"
    assert mask(secrets, b"<aaaaaaaaaab> <aaaaaaaaaa> <aaa>") == b"<***> <***> <aaa>"


def naive_spans(forms: list[bytes], data: bytes) -> list[tuple[int, int]]:
    """Every occurrence of every form, found by plain search, merged when they overlap."""
    found = sorted(
        (start, start + len(form))
        for form in forms
        for start in range(len(data))
        if data.startswith(form, start)
    )
    spans: list[tuple[int, int]] = []
    for start, end in found:
        if spans and start < spans[-1][1]:
            spans[-1] = (spans[-1][0], max(spans[-1][1], end))
        else:
            spans.append((start, end))
    return spans


@settings(max_examples=300, deadline=None)
@given(
    secrets=st.lists(st.text(alphabet='ab/+=\n%"', min_size=1, max_size=40), max_size=5),
    filler=st.binary(max_size=40),
    picks=st.lists(st.tuples(st.integers(0, 4), st.integers(0, 30)), max_size=6),
)
def test_the_sampled_index_finds_every_occurrence_a_plain_search_finds(secrets, filler, picks):
    # Forms of every length (so every sampling step) planted at every offset, and chance ones.
    masker = Masker(secrets)
    data = bytearray(filler)
    for which, at in picks:
        if masker.forms:
            form = masker.forms[which % len(masker.forms)]
            data[at:at] = form
    data = bytes(data)
    assert masker.spans(data) == naive_spans(masker.forms, data)
