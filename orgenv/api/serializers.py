"""The response shapes, for the OpenAPI schema. Responses are built as plain dicts by
orgenv.formats.environment_payload (a serializer per request would cost more than the
resolution itself); these describe exactly that shape."""

from __future__ import annotations

from rest_framework import serializers


class ConflictSerializer(serializers.Serializer):
    name = serializers.CharField(help_text="The variable defined by several groups.")
    winner = serializers.CharField(help_text="The source that wins: group:<name>.")
    shadowed = serializers.ListField(
        child=serializers.CharField(), help_text="Sources of equal priority that lost."
    )


class EnvironmentSerializer(serializers.Serializer):
    organization = serializers.CharField(help_text="Organization slug.")
    project = serializers.CharField(help_text="Project slug.")
    variables = serializers.DictField(
        child=serializers.CharField(allow_null=True),
        help_text="Name → value. On the member endpoint every secret value is null, for "
        "every user: reveal one with POST …/secrets/<NAME>/reveal.",
    )
    secrets = serializers.ListField(
        child=serializers.CharField(), help_text="Names whose value is secret."
    )
    sources = serializers.DictField(
        child=serializers.CharField(), help_text="Name → group:<name> or project."
    )
    conflicts = ConflictSerializer(many=True)
    resolution_id = serializers.IntegerField(
        help_text="The id of the access event recording this resolution (also in the "
        "X-Orgenv-Resolution header)."
    )


class DetailSerializer(serializers.Serializer):
    detail = serializers.CharField(help_text="What went wrong, in one sentence.")


class RevealRequestSerializer(serializers.Serializer):
    reason = serializers.CharField(
        max_length=500, help_text="Why you need to see the value; recorded in the audit log."
    )


class RevealSerializer(serializers.Serializer):
    name = serializers.CharField()
    value = serializers.CharField(help_text="The effective value of NAME for the project.")
    source = serializers.CharField(help_text="group:<name> or project.")
    event = serializers.IntegerField(help_text="The id of the secret_revealed audit event.")


class ReauthSerializer(DetailSerializer):
    # Absent from the other 403, "not an admin of this organization" (schemathesis checks it).
    reauth_url = serializers.CharField(
        required=False,
        help_text="When the password (and code) must be entered again: confirm them there, "
        "then reveal again.",
    )
