"""Fraud detection: catch artificial streaming and bot farms in the play-event stream.

``StreamDetector`` consumes events incrementally (per-account behaviour plus
dense-block search over accounts x tracks x shared infrastructure on a
sliding window) and raises ``Alert`` s with their evidence; ``FraudService``
runs it behind the purpose gate, stores alerts and filters flagged plays;
``service.scan_events`` / ``service.scan_chunks`` (time-ordered chunks,
bounded memory) are the batch entry points; ``simulate`` and ``family`` make
labelled streams for tests and the bench.
"""

from consentune.fraud.detector import Alert, DetectorConfig, IntakeStats, StreamDetector
from consentune.fraud.encode import EventBatch, EventEncoder

__all__ = ["Alert", "DetectorConfig", "EventBatch", "EventEncoder", "IntakeStats", "StreamDetector"]
