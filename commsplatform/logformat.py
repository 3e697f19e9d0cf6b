import json
import logging
from datetime import UTC, datetime

from workers.tracing import log_ids


class JsonFormatter(logging.Formatter):
    """One JSON object per line, for log shippers; `trace_id`/`span_id` inside a traced span."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        ids = log_ids()
        if ids is not None:
            entry["trace_id"], entry["span_id"] = ids
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


class TextFormatter(logging.Formatter):
    """The plain format, with ` trace_id=… span_id=…` after the message inside a traced span."""

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        ids = log_ids()
        if ids is None:
            return text
        head, newline, rest = text.partition("\n")  # keep a traceback below the line
        return f"{head} trace_id={ids[0]} span_id={ids[1]}{newline}{rest}"
