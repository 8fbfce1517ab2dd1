"""One log line per refused request (403), instead of Django's traceback.

A PermissionDenied is an expected answer, not a failure of the code: django.request logs it
with the whole traceback, which buries real errors and says nothing about who was refused.
This filter, on the django.request logger (config.settings LOGGING), rewrites each 403
record as `Forbidden (403): WHO from ADDRESS: METHOD PATH[: reason]` without exc_info.
"""

from __future__ import annotations

import logging


class ForbiddenOnOneLine(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "status_code", None) != 403:
            return True
        request = getattr(record, "request", None)
        if request is None:
            return True
        # Imported here: logging is configured before the models can be imported.
        from .events import client_address

        user = getattr(request, "user", None)
        who = user.get_username() if user is not None and user.is_authenticated else "anonymous"
        exception = record.exc_info[1] if record.exc_info else None
        reason = f": {exception}" if exception is not None and str(exception) else ""
        record.msg = "Forbidden (403): %s from %s: %s %s%s"
        record.args = (who, client_address(request) or "?", request.method, request.path, reason)
        record.exc_info, record.exc_text, record.stack_info = None, None, None
        return True
