"""One error tree for the whole project; every error carries a hint.

::

    ConsentuneError
    ├── InvalidInput            bad argument or request body
    │   ├── ConfigError         settings missing or contradictory (refuses to start)
    │   ├── AudioRejected       upload is not acceptable audio
    │   ├── PayloadTooLarge     request body over its size limit
    │   └── RangeNotSatisfiable byte range outside the file
    ├── NotFound                unknown artist, track, key, ...
    ├── Conflict                state does not allow the change
    ├── ConsentError            consent rule or terms rejected
    ├── AccessDenied            authenticated but not allowed
    │   ├── ChallengeRequired   the shield asks for a proof of work first
    │   ├── Blocked             the shield blocked this client
    │   ├── SignInRequired      this audio is for signed-in listeners only
    │   ├── PreviewOnly         the preview an anonymous listener may hear is over
    │   ├── StreamSuperseded    a newer play of the same listener ended this stream
    │   └── NewcomerLimit       audio for new identities is used up here for now
    ├── Throttled               a rate limit was hit; retry later
    ├── AuthenticationFailed    missing or unknown credentials
    ├── LedgerError             ledger cannot serve the request
    │   └── VerificationFailed  proof, receipt or checkpoint does not verify
    ├── StorageError            database or blob store failure
    └── JobFailed               a batch job stopped (a worker died, an engine failed); resumable

The CLI maps each class to one line and an exit code; the API maps each
class to an HTTP status and one JSON error shape.
"""

from __future__ import annotations


class ConsentuneError(Exception):
    """Base class: a message saying what happened and a hint saying what to do."""

    code = "error"

    def __init__(self, message: str, *, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message} (hint: {self.hint})" if self.hint else self.message


class InvalidInput(ConsentuneError):
    code = "invalid_input"


class ConfigError(InvalidInput):
    """The deployment is misconfigured, e.g. production mode without the shared secrets."""

    code = "config_error"


class RangeNotSatisfiable(InvalidInput):
    code = "range_not_satisfiable"


class PayloadTooLarge(InvalidInput):
    code = "payload_too_large"


class AudioRejected(InvalidInput):
    """The upload is not audio we accept; ``reason`` is a stable machine tag."""

    code = "audio_rejected"

    def __init__(self, message: str, *, reason: str, hint: str = "") -> None:
        super().__init__(message, hint=hint)
        self.reason = reason


class NotFound(ConsentuneError):
    code = "not_found"


class Conflict(ConsentuneError):
    code = "conflict"


class ConsentError(ConsentuneError):
    code = "consent_error"


class AccessDenied(ConsentuneError):
    code = "forbidden"


class ChallengeRequired(AccessDenied):
    """The shield wants a solved proof-of-work challenge (``challenge`` says which)."""

    code = "challenge_required"

    def __init__(self, message: str, *, challenge: dict[str, object], hint: str = "") -> None:
        super().__init__(message, hint=hint)
        self.challenge = challenge


class Blocked(AccessDenied):
    code = "blocked"


class SignInRequired(AccessDenied):
    code = "sign_in_required"


class PreviewOnly(AccessDenied):
    code = "preview_only"


class StreamSuperseded(AccessDenied):
    code = "stream_superseded"


class NewcomerLimit(AccessDenied):
    """New or unverified listeners' shared audio allowance is used up for now; says no scope and no figure."""

    code = "newcomer_limit"


class Throttled(ConsentuneError):
    code = "rate_limited"

    def __init__(self, message: str, *, retry_after_s: float, hint: str = "") -> None:
        super().__init__(message, hint=hint)
        self.retry_after_s = retry_after_s


class AuthenticationFailed(ConsentuneError):
    code = "unauthenticated"


class LedgerError(ConsentuneError):
    code = "ledger_error"


class VerificationFailed(LedgerError):
    code = "verification_failed"


class StorageError(ConsentuneError):
    code = "storage_error"


class JobFailed(ConsentuneError):
    code = "job_failed"


__all__ = [
    "AccessDenied",
    "AudioRejected",
    "AuthenticationFailed",
    "Blocked",
    "ChallengeRequired",
    "ConfigError",
    "Conflict",
    "ConsentError",
    "ConsentuneError",
    "InvalidInput",
    "JobFailed",
    "LedgerError",
    "NotFound",
    "PayloadTooLarge",
    "PreviewOnly",
    "RangeNotSatisfiable",
    "SignInRequired",
    "StorageError",
    "StreamSuperseded",
    "Throttled",
    "VerificationFailed",
]
