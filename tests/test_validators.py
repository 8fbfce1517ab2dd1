"""The rules of docs/concepts.md "Names and values", checked by generating names and values."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from hypothesis import given
from hypothesis import strategies as st

from orgenv.validators import (
    NAME_MAX_LENGTH,
    VALUE_MAX_BYTES,
    environment_guard_errors,
    validate_variable_name,
    validate_variable_value,
)

valid_names = st.from_regex(r"\A[A-Za-z_][A-Za-z0-9_]{0,254}\Z").filter(
    lambda name: not name.startswith("ORGENV_")
)


@given(valid_names)
def test_it_accepts_every_name_the_rule_allows(name):
    validate_variable_name(name)


@given(st.text(min_size=1, max_size=40).filter(lambda s: not s[0].isascii() or s[0].isdigit()))
def test_it_rejects_names_that_do_not_start_with_a_letter_or_underscore(name):
    with pytest.raises(ValidationError):
        validate_variable_name(name)


@given(
    st.tuples(valid_names, st.sampled_from("-. $=/:é\n\t'\"").map(str), st.text(max_size=5)).map(
        lambda parts: parts[0][:100] + parts[1] + parts[2]
    )
)
def test_it_rejects_names_with_any_character_outside_the_rule(name):
    with pytest.raises(ValidationError) as caught:
        validate_variable_name(name)
    assert "not a valid variable name" in caught.value.messages[0]


@given(st.from_regex(r"\A[A-Za-z0-9_]*\Z", fullmatch=True))
def test_it_reserves_the_orgenv_prefix(suffix):
    with pytest.raises(ValidationError) as caught:
        validate_variable_name("ORGENV_" + suffix)
    assert "reserved" in caught.value.messages[0]


def test_it_accepts_a_name_of_exactly_the_maximum_length_and_rejects_one_more():
    validate_variable_name("A" * NAME_MAX_LENGTH)
    with pytest.raises(ValidationError) as caught:
        validate_variable_name("A" * (NAME_MAX_LENGTH + 1))
    assert "at most 255 characters" in caught.value.messages[0]


def test_names_are_case_sensitive_and_lower_case_is_fine():
    validate_variable_name("lower_case")
    validate_variable_name("orgenv_is_only_reserved_in_upper_case")


def test_an_empty_name_is_rejected():
    with pytest.raises(ValidationError):
        validate_variable_name("")


@given(st.text(max_size=200).filter(lambda s: "\x00" not in s))
def test_it_accepts_any_text_without_nul(value):
    validate_variable_value(value)


@given(st.text(max_size=50), st.text(max_size=50))
def test_it_rejects_a_nul_anywhere_and_never_quotes_the_value(before, after):
    value = before + "\x00" + after
    with pytest.raises(ValidationError) as caught:
        validate_variable_value(value)
    message = caught.value.messages[0]
    assert "NUL" in message
    if len(before + after) > 3:
        assert before + after not in message


@given(st.sampled_from(["a", "é", "€", "𝄞"]))
def test_the_size_limit_counts_utf8_bytes_not_characters(char):
    width = len(char.encode("utf-8"))
    fits = char * (VALUE_MAX_BYTES // width)
    validate_variable_value(fits)
    with pytest.raises(ValidationError) as caught:
        validate_variable_value(fits + char)
    assert "65,536 bytes" in caught.value.messages[0]


def test_multi_line_values_are_allowed():
    validate_variable_value("-----BEGIN KEY-----\nabc\n-----END KEY-----\n")


def test_the_guard_names_both_labels():
    [message] = environment_guard_errors("prod", "production", [("jobs", "staging")])
    assert "'staging'" in message and "'production'" in message and "'jobs'" in message


def test_the_guard_accepts_projects_with_the_same_label_and_unlabelled_groups():
    assert environment_guard_errors("prod", "production", [("db", "production")]) == []
    assert environment_guard_errors("shared", "", [("jobs", "staging")]) == []
