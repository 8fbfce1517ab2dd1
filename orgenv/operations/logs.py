"""LOG_FORMAT=json: one JSON object per log line, for log collectors.

The fields are the record's time, level, logger and message (and the traceback of an
exception). orgenv never logs a value or a token (docs/access.md); this formatter
adds nothing from the request, so it cannot add one either.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        status = getattr(record, "status_code", None)
        if isinstance(status, int):
            entry["status"] = status
        return json.dumps(entry, ensure_ascii=False)
