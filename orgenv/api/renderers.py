"""The `?format=` choices of the runner endpoint, and the negotiation that picks one.

The query parameter alone decides (JSON without it); the Accept header is ignored, so a
runner gets the same answer whatever its HTTP client sends by default.
"""

from __future__ import annotations

from typing import Any

from rest_framework import exceptions, status
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.request import Request

from .. import formats


class UnknownFormat(exceptions.APIException):
    status_code = status.HTTP_400_BAD_REQUEST
    default_code = "unknown_format"


class _TextRenderer(BaseRenderer):
    media_type = "text/plain"
    charset = "utf-8"

    def render(
        self, data: Any, accepted_media_type: str | None = None, renderer_context: Any = None
    ) -> bytes:
        if data is None:
            return b""
        return self.render_variables(data["variables"]).encode("utf-8")

    def render_variables(self, variables: dict[str, str]) -> str:
        raise NotImplementedError


class DotenvRenderer(_TextRenderer):
    format = "dotenv"

    def render_variables(self, variables: dict[str, str]) -> str:
        return formats.render_dotenv(variables)


class ShellRenderer(_TextRenderer):
    format = "shell"

    def render_variables(self, variables: dict[str, str]) -> str:
        return formats.render_shell(variables)


class FormatParameter(BaseContentNegotiation):
    def select_parser(self, request: Request, parsers: list) -> None:
        return None  # read-only endpoints: no request body

    def select_renderer(
        self, request: Request, renderers: list, format_suffix: str | None = None
    ) -> tuple[BaseRenderer, str]:
        wanted = request.query_params.get("format") or "json"
        for renderer in renderers:
            if renderer.format == wanted:
                return renderer, renderer.media_type
        allowed = ", ".join(r.format for r in renderers)
        raise UnknownFormat(f"format: {wanted[:40]!r} is not a format; use one of {allowed}.")


RUNNER_RENDERERS = [JSONRenderer, DotenvRenderer, ShellRenderer]
