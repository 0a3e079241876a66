"""Operations: health and readiness, Prometheus metrics, structured logs with request ids.

An adapter room beside ``storage/``: capability code never imports it; it
reports through the :class:`~consentune.observe.Observer` port instead.
"""

from consentune.ops.logs import REQUEST_ID, JsonFormatter, accept_request_id, configure_logging
from consentune.ops.metrics import MULTIPROC_ENV, Metrics, multiprocess_dir, reset_multiprocess_dir
from consentune.ops.ready import Readiness, check_parts

__all__ = [
    "MULTIPROC_ENV",
    "REQUEST_ID",
    "JsonFormatter",
    "Metrics",
    "Readiness",
    "accept_request_id",
    "check_parts",
    "configure_logging",
    "multiprocess_dir",
    "reset_multiprocess_dir",
]
