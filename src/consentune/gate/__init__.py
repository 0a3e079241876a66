"""The purpose gate: the single door to content.  See :class:`PurposeGate`."""

from consentune.gate.core import AdmittedUpload, Denial, Grant, PurposeGate, WorkBatch
from consentune.gate.decode import ACCEPTED_FORMATS, AudioLimits
from consentune.gate.grants import GrantedReader, GrantItem, WorkGrant
from consentune.gate.handles import ACTIONS, TrackHandle

__all__ = [
    "ACCEPTED_FORMATS",
    "ACTIONS",
    "AdmittedUpload",
    "AudioLimits",
    "Denial",
    "Grant",
    "GrantItem",
    "GrantedReader",
    "PurposeGate",
    "TrackHandle",
    "WorkBatch",
    "WorkGrant",
]
