"""Does a public value look like a credential? Yelp's detect-secrets plugins decide, not
regexes of our own: they are maintained as token formats change.

`scan(name, value)` returns the rules that matched, never the value nor the part of it that
matched, so a warning can be printed, logged or shown anywhere. The plugins' verification
(which would send the candidate to the provider) is never called: only `analyze_string`.

Rules come in two kinds. *Format* rules recognise a credential by its shape (an AWS key id,
a private key block, `user:password@` in a URL, a Slack or GitHub token…): they always
apply. *Heuristic* rules (high entropy, a password-like name) also fire on public things
such as commit hashes or publishable keys, so ALLOWED_NAMES silences them for names that
say the value is meant to be public. Everything else is silenced per variable by its
"not a secret" acknowledgement.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from detect_secrets.filters.heuristic import (
    is_potential_uuid,
    is_prefixed_with_dollar_sign,
    is_sequential_string,
    is_templated_secret,
)
from detect_secrets.plugins.artifactory import ArtifactoryDetector
from detect_secrets.plugins.aws import AWSKeyDetector
from detect_secrets.plugins.azure_storage_key import AzureStorageKeyDetector
from detect_secrets.plugins.basic_auth import BasicAuthDetector
from detect_secrets.plugins.discord import DiscordBotTokenDetector
from detect_secrets.plugins.github_token import GitHubTokenDetector
from detect_secrets.plugins.gitlab_token import GitLabTokenDetector
from detect_secrets.plugins.high_entropy_strings import (
    Base64HighEntropyString,
    HexHighEntropyString,
    HighEntropyStringsPlugin,
)
from detect_secrets.plugins.jwt import JwtTokenDetector
from detect_secrets.plugins.keyword import KeywordDetector
from detect_secrets.plugins.mailchimp import MailchimpDetector
from detect_secrets.plugins.npm import NpmDetector
from detect_secrets.plugins.openai import OpenAIDetector
from detect_secrets.plugins.private_key import PrivateKeyDetector
from detect_secrets.plugins.pypi_token import PypiTokenDetector
from detect_secrets.plugins.sendgrid import SendGridDetector
from detect_secrets.plugins.slack import SlackDetector
from detect_secrets.plugins.square_oauth import SquareOAuthDetector
from detect_secrets.plugins.stripe import StripeDetector
from detect_secrets.plugins.telegram_token import TelegramBotTokenDetector
from detect_secrets.plugins.twilio import TwilioKeyDetector

FORMAT_RULES = (
    AWSKeyDetector(),
    AzureStorageKeyDetector(),
    ArtifactoryDetector(),
    BasicAuthDetector(),
    DiscordBotTokenDetector(),
    GitHubTokenDetector(),
    GitLabTokenDetector(),
    JwtTokenDetector(),
    MailchimpDetector(),
    NpmDetector(),
    OpenAIDetector(),
    PrivateKeyDetector(),
    PypiTokenDetector(),
    SendGridDetector(),
    SlackDetector(),
    SquareOAuthDetector(),
    StripeDetector(),
    TelegramBotTokenDetector(),
    TwilioKeyDetector(),
)
# detect-secrets' own default limits.
ENTROPY_RULES: tuple[HighEntropyStringsPlugin, ...] = (
    Base64HighEntropyString(limit=4.5),
    HexHighEntropyString(limit=3.0),
)
KEYWORD_RULE = KeywordDetector()

# Names that say a value is public by design: publishable and public keys, client-side
# build variables, content hashes. They silence the heuristic rules only.
ALLOWED_NAMES = re.compile(
    r"(^|_)(PUBLIC|PUBLISHABLE)(_|$)|^(NEXT_PUBLIC|VITE|REACT_APP)_"
    r"|_(SHA|SHA256|COMMIT|REVISION|CHECKSUM|DIGEST|HASH)$",
    re.IGNORECASE,
)


@dataclass(frozen=True, order=True)
class Hit:
    """One rule a value matched. Deliberately nothing of the value."""

    rule: str


def _placeholder(candidate: str) -> bool:
    return (
        not candidate
        or is_templated_secret(candidate)
        or is_prefixed_with_dollar_sign(candidate)
        or is_sequential_string(candidate)
        or is_potential_uuid(candidate)
    )


def _format_rules(lines: list[str]) -> Iterable[str]:
    for plugin in FORMAT_RULES:
        if any(next(iter(plugin.analyze_string(line)), None) for line in lines):
            yield plugin.secret_type


def _entropy_rules(lines: list[str]) -> Iterable[str]:
    # Word by word, quoted as the plugins require: a whole URL or sentence is not one token.
    words = [word for line in lines for word in line.split()]
    for plugin in ENTROPY_RULES:
        for word in words:
            found = plugin.analyze_string(f'"{word}"')
            if any(
                plugin.calculate_shannon_entropy(c) > plugin.entropy_limit and not _placeholder(c)
                for c in found
            ):
                yield plugin.secret_type
                break


def _keyword_rule(name: str, lines: list[str]) -> Iterable[str]:
    # The keyword plugin reads assignments: give it `NAME="value"` as a config file would.
    for line in lines:
        for candidate in KEYWORD_RULE.analyze_string(f'{name}="{line}"'):
            if not _placeholder(candidate):
                yield KEYWORD_RULE.secret_type
                return


def scan(name: str, value: str) -> list[Hit]:
    """The rules a public variable NAME=value matches, each once, sorted."""
    lines = [line for line in value.splitlines() if line.strip()]
    if not lines:
        return []
    rules = set(_format_rules(lines))
    if not ALLOWED_NAMES.search(name):
        rules.update(_entropy_rules(lines))
        rules.update(_keyword_rule(name, lines))
    return sorted(Hit(rule) for rule in rules)


def describe(hits: list[Hit]) -> str:
    """`AWS Access Key, Secret Keyword`: the rules, for one line of a warning."""
    return ", ".join(hit.rule for hit in hits)
