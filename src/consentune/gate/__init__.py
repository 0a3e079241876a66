"""The purpose gate: the single door to content.  See :class:`PurposeGate`."""

from consentune.gate.core import AdmittedUpload, Denial, Grant, PurposeGate
from consentune.gate.decode import ACCEPTED_FORMATS, AudioLimits
from consentune.gate.handles import ACTIONS, TrackHandle

__all__ = [
    "ACCEPTED_FORMATS",
    "ACTIONS",
    "AdmittedUpload",
    "AudioLimits",
    "Denial",
    "Grant",
    "PurposeGate",
    "TrackHandle",
]
