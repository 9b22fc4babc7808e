"""JSON log lines with the structured extras of every record."""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any

# The attributes every LogRecord has; everything else came in ``extra``.
_STANDARD = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}


class JSONFormatter(logging.Formatter):
    """JSONFormatter writes one JSON object per record: time, level, logger,
    msg, the record's extras, and err with the traceback of an exception."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_"):
                out[key] = value
        if record.exc_info:
            out["traceback"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str, ensure_ascii=False)


def setup(level: str) -> None:
    """setup sends every log record to stderr as JSON at level and up."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JSONFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # The client's per-call debug lines are too chatty even at debug.
    logging.getLogger("eventstore_client.client").setLevel(
        max(logging.INFO, root.level)
    )
