"""The server's access-log formatter: uvicorn's, with stream tokens left out of the log."""

from __future__ import annotations

import logging
import re

from uvicorn.logging import AccessFormatter as _UvicornAccessFormatter

# a stream URL's token grants audio until it expires: whoever reads the log must not be able to replay it
_STREAM_TOKEN = re.compile(r"(/stream/)[^\s?\"]+")


class AccessFormatter(_UvicornAccessFormatter):
    def formatMessage(self, record: logging.LogRecord) -> str:
        return _STREAM_TOKEN.sub(r"\1<token>", super().formatMessage(record))


__all__ = ["AccessFormatter"]
