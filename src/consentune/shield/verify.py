"""Sign-up verification: what a new listener account must prove before it can ever become established.

Three pluggable ways, any one of which verifies an account (the platform
chooses which it accepts, ``CONSENTUNE_SIGNUP_VERIFY``):

- ``pow``: a memory-hard proof of work (scrypt, 4 MiB per evaluation) sized
  to cost a browser about a second (:class:`SignupWork`, :func:`calibrate`).
  A speed bump: it costs a farm almost nothing per account (see
  ``docs/shield-detection.md``, *Identity cost*), but a GPU or ASIC gains
  little over a browser, unlike a SHA-256 puzzle.
- ``email``: a sealed, expiring link sent through the platform's
  :class:`Outbox` (:class:`EmailLinkVerifier`); one account per mailbox.
- ``hook``: the platform's own identity provider, phone or payment check
  behind the small :class:`IdentityCheck` protocol; one account per subject
  it returns (a phone number, a card fingerprint, an IdP subject).

Unverified accounts stay *unestablished*: never trusted by the detector and
always inside the newcomer budgets (``shield.budget``).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import math
import re
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import count
from typing import Protocol, TypeVar

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from consentune.errors import Conflict, InvalidInput
from consentune.shield.streams import b64decode, b64encode, check_secret

METHODS = ("pow", "email", "hook", "none")
MAX_NONCE_CHARS = 64
_T = TypeVar("_T")
_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]{2,}$")


# -- sealed tokens -------------------------------------------------------------
class _Sealer:
    """AES-GCM sealed JSON: the client can neither read nor change what a puzzle or a link says."""

    def __init__(self, secret: bytes, context: str) -> None:
        check_secret(secret, what=context)
        self._aead = AESGCM(hmac.new(secret, context.encode(), hashlib.sha256).digest())
        self._context = context.encode()

    def seal(self, payload: dict[str, object]) -> str:
        nonce = secrets.token_bytes(12)
        body = json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()
        return b64encode(nonce + self._aead.encrypt(nonce, body, self._context))

    def open(self, token: str) -> dict[str, object] | None:
        if not isinstance(token, str) or len(token) > 2048:
            return None
        try:
            raw = b64decode(token)
            opened = json.loads(self._aead.decrypt(raw[:12], raw[12:], self._context))
        except (ValueError, InvalidTag):
            return None
        return opened if isinstance(opened, dict) else None


# -- proof of work -------------------------------------------------------------
@dataclass(frozen=True)
class WorkParams:
    """scrypt cost (``n``, ``r``: 128·n·r bytes of memory per evaluation) and the puzzle's size.

    The client must find ``solutions`` distinct nonces whose scrypt hash has ``bits`` leading zero
    bits: ``solutions · 2**bits`` evaluations expected, with a spread of 1/√solutions around it
    (one lucky nonce cannot make it cheap).  The server checks ``solutions`` evaluations.
    """

    n: int = 4096
    r: int = 8
    solutions: int = 8
    bits: int = 2

    def __post_init__(self) -> None:
        if self.n < 2 or self.n & (self.n - 1) or not 1 <= self.r <= 32:
            raise InvalidInput(f"scrypt n={self.n}, r={self.r}", hint="n must be a power of two >= 2; r in 1..32")
        if not 1 <= self.solutions <= 64 or not 0 <= self.bits <= 24:
            raise InvalidInput(f"solutions={self.solutions}, bits={self.bits}", hint="solutions 1..64, bits 0..24")

    @property
    def memory_bytes(self) -> int:
        return 128 * self.n * self.r

    @property
    def expected_evaluations(self) -> int:
        return int(self.solutions * 2**self.bits)


@dataclass(frozen=True)
class SignupPuzzle:
    token: str
    salt: str
    params: WorkParams
    expires_at: float


def work_hash(params: WorkParams, salt: str, nonce: str) -> bytes:
    """One evaluation: ``scrypt(password=nonce, salt=salt, N=n, r=r, p=1, dkLen=32)``."""
    return hashlib.scrypt(nonce.encode(), salt=salt.encode(), n=params.n, r=params.r, p=1, dklen=32,
                          maxmem=2 * params.memory_bytes + 2**20)  # fmt: skip


def _meets(digest: bytes, bits: int) -> bool:
    return 256 - int.from_bytes(digest, "big").bit_length() >= bits


class SignupWork:
    """Issues puzzles bound to one account and checks their solutions; nothing is stored.

    A solution verifies only the account it was issued to, so replaying it elsewhere gains nothing.
    """

    def __init__(self, secret: bytes, params: WorkParams | None = None, *, ttl_s: float = 600.0) -> None:
        self._sealer = _Sealer(secret, "consentune.shield.signup-work.v1")
        self.params = params or WorkParams()
        self.ttl_s = ttl_s

    def issue(self, *, account_id: str, now: float) -> SignupPuzzle:
        salt = secrets.token_hex(16)
        p = self.params
        token = self._sealer.seal({"a": account_id, "s": salt, "e": now + self.ttl_s, "n": p.n, "r": p.r,
                                   "k": p.solutions, "b": p.bits})  # fmt: skip
        return SignupPuzzle(token=token, salt=salt, params=p, expires_at=now + self.ttl_s)

    def verify(self, *, token: str, nonces: Sequence[str], account_id: str, now: float) -> bool:
        """True when ``token`` is ours, unexpired, issued to ``account_id`` and ``nonces`` solve it."""
        payload = self._sealer.open(token)
        if payload is None or payload.get("a") != account_id:
            return False
        try:
            n, r, k, b = (int(_num(payload, key)) for key in ("n", "r", "k", "b"))
            params = WorkParams(n=n, r=r, solutions=k, bits=b)
            salt, expires_at = str(payload["s"]), _num(payload, "e")
        except (KeyError, TypeError, ValueError, InvalidInput):
            return False
        if now >= expires_at or len(set(nonces)) != params.solutions or len(nonces) != params.solutions:
            return False
        if any(not isinstance(x, str) or not 0 < len(x) <= MAX_NONCE_CHARS for x in nonces):
            return False
        # one evaluation each, stopping at the first wrong one: a bogus answer costs the server one
        return all(_meets(work_hash(params, salt, nonce), params.bits) for nonce in nonces)


def _num(payload: dict[str, object], key: str) -> float:
    value = payload[key]
    if not isinstance(value, (int, float)):
        raise TypeError(key)
    return float(value)


def solve_work(puzzle: SignupPuzzle) -> list[str]:
    """The reference solver (what a browser does in JavaScript/WebAssembly): the first distinct nonces."""
    found: list[str] = []
    for i in count():
        nonce = str(i)
        if _meets(work_hash(puzzle.params, puzzle.salt, nonce), puzzle.params.bits):
            found.append(nonce)
            if len(found) == puzzle.params.solutions:
                return found
    raise AssertionError("unreachable")  # pragma: no cover


def measure_rate(params: WorkParams, *, seconds: float = 1.0) -> float:
    """scrypt evaluations per second on this machine's core (native code)."""
    started, done = time.perf_counter(), 0
    while time.perf_counter() - started < seconds or done < 3:
        work_hash(params, "calibration", str(done))
        done += 1
    return done / (time.perf_counter() - started)


def calibrate(*, native_rate: float, target_s: float = 1.0, browser_slowdown: float = 4.0,
              base: WorkParams | None = None) -> WorkParams:  # fmt: skip
    """Puzzle size so a browser needs ``target_s`` seconds on average.

    ``native_rate``: evaluations per second measured natively (:func:`measure_rate`);
    ``browser_slowdown``: how much slower a browser's scrypt is (JavaScript/WebAssembly;
    an assumption, documented).  ``bits`` is rounded in log space, so the expectation lands
    within a factor √2 of the target.
    """
    base = base or WorkParams()
    if native_rate <= 0 or target_s <= 0 or browser_slowdown <= 0:
        raise InvalidInput("calibrate needs positive rate, target and slowdown", hint="measure_rate() first")
    evaluations = target_s * native_rate / browser_slowdown
    bits = max(0, round(math.log2(max(1.0, evaluations / base.solutions))))
    return WorkParams(n=base.n, r=base.r, solutions=base.solutions, bits=min(24, bits))


# -- e-mail link ---------------------------------------------------------------
@dataclass(frozen=True)
class Mail:
    to: str
    subject: str
    body: str


class Outbox(Protocol):
    """The platform's mail sender (SMTP, an e-mail API, a queue); called once per link."""

    def send(self, mail: Mail) -> None: ...


@dataclass
class MemoryOutbox:
    """Keeps every mail (tests, demos)."""

    sent: list[Mail] = field(default_factory=list)

    def send(self, mail: Mail) -> None:
        self.sent.append(mail)


@dataclass(frozen=True)
class Verified:
    """An account passed ``kind``; ``subject`` (a keyed digest) is what one account per mailbox/phone keys on."""

    account_id: str
    kind: str
    subject: str | None


class EmailLinkVerifier:
    """Sends a sealed link naming the account and a digest of the address; opening it verifies the account."""

    kind = "email"

    def __init__(self, *, secret: bytes, outbox: Outbox, link_base: str, ttl_s: float = 86400.0) -> None:
        self._sealer = _Sealer(secret, "consentune.shield.email-link.v1")
        self._subject_key = hmac.new(secret, b"email-subject", hashlib.sha256).digest()
        self._outbox = outbox
        self._link_base = link_base
        self.ttl_s = ttl_s

    def send_link(self, *, account_id: str, email: str, now: float) -> None:
        address = normalized_email(email)
        token = self._sealer.seal({"a": account_id, "m": self._subject(address), "e": now + self.ttl_s})
        sep = "&" if "?" in self._link_base else "?"
        self._outbox.send(Mail(to=email.strip(), subject="Confirm your listener account",
                               body=f"Open this link to confirm your account:\n{self._link_base}{sep}token={token}\n"
                                    f"It expires in {self.ttl_s / 3600:.0f} h. Ignore this mail if you did not "
                                    "sign up."))  # fmt: skip

    def confirm(self, *, token: str, now: float) -> Verified:
        payload = self._sealer.open(token)
        expires = None if payload is None else payload.get("e")
        if payload is None or not isinstance(expires, (int, float)) or now >= expires:
            raise InvalidInput("this confirmation link is not valid or has expired",
                               hint="ask for a new link with POST /v1/listen/accounts/verify/email")  # fmt: skip
        return Verified(account_id=str(payload["a"]), kind=self.kind, subject=str(payload["m"]))

    def _subject(self, address: str) -> str:
        return hmac.new(self._subject_key, address.encode(), hashlib.sha256).hexdigest()[:48]


def normalized_email(email: str) -> str:
    """Lower case, ``+tag`` dropped (one mailbox, one account); raises :class:`InvalidInput` if malformed."""
    text = email.strip().lower()
    if not _EMAIL.match(text) or len(text) > 254:
        raise InvalidInput(f"{email[:80]!r} is not an e-mail address", hint="give an address like name@example.org")
    local, domain = text.split("@")
    return f"{local.split('+')[0]}@{domain}"


# -- the platform's own check --------------------------------------------------
class IdentityCheck(Protocol):
    """The platform's identity provider, phone (SMS code) or payment check.

    ``check`` gets the account and whatever the client sent (an IdP assertion,
    an SMS code, a payment intent id) and returns a stable subject for the
    person or instrument behind it (one account per subject), or None when
    the evidence does not hold.  Configure it as ``CONSENTUNE_SIGNUP_HOOK=module:factory``.
    """

    def check(self, *, account_id: str, evidence: str) -> str | None: ...


class VerifiedAccounts(Protocol):
    """Storage port: remember that an account passed verification."""

    def mark_account_verified(self, account_id: str, *, at: float, kind: str, subject: str | None) -> bool:
        """False when ``subject`` already verified another account."""
        ...


class SignupVerification:
    """The platform's chosen methods, and the one place that marks an account verified."""

    def __init__(
        self,
        *,
        methods: Sequence[str],
        accounts: VerifiedAccounts,
        work: SignupWork | None = None,
        email: EmailLinkVerifier | None = None,
        hook: IdentityCheck | None = None,
        hook_key: bytes = b"",
    ) -> None:
        unknown = set(methods) - set(METHODS)
        if unknown or not methods:
            raise InvalidInput(f"sign-up verification {sorted(unknown) or methods!r}",
                               hint=f"choose from {', '.join(METHODS)}")  # fmt: skip
        missing = [m for m, part in (("pow", work), ("email", email), ("hook", hook)) if m in methods and part is None]
        if missing:
            raise InvalidInput(f"sign-up verification {missing} is chosen but not configured",
                               hint="see docs/shield-detection.md, Identity cost")  # fmt: skip
        self.methods = tuple(methods)
        self._accounts = accounts
        self.work, self.email, self._hook, self._hook_key = work, email, hook, hook_key

    @property
    def verified_at_signup(self) -> bool:
        """``none``: every account counts as verified (development, closed platforms)."""
        return "none" in self.methods

    def puzzle(self, *, account_id: str, now: float) -> SignupPuzzle:
        return self._part("pow", self.work).issue(account_id=account_id, now=now)

    def solve_puzzle(self, *, account_id: str, token: str, nonces: Sequence[str], now: float) -> None:
        if not self._part("pow", self.work).verify(token=token, nonces=nonces, account_id=account_id, now=now):
            raise InvalidInput("the proof of work is wrong, expired or for another account",
                               hint="ask for a new puzzle and solve it")  # fmt: skip
        self._mark(Verified(account_id, "pow", None), now)

    def send_email(self, *, account_id: str, email: str, now: float) -> None:
        self._part("email", self.email).send_link(account_id=account_id, email=email, now=now)

    def confirm_email(self, *, token: str, now: float) -> str:
        verified = self._part("email", self.email).confirm(token=token, now=now)
        self._mark(verified, now)
        return verified.account_id

    def check_hook(self, *, account_id: str, evidence: str, now: float) -> None:
        subject = self._part("hook", self._hook).check(account_id=account_id, evidence=evidence)
        if subject is None:
            raise InvalidInput("the platform could not verify this account", hint="check the evidence and retry")
        digest = hmac.new(self._hook_key, subject.encode(), hashlib.sha256).hexdigest()[:48]
        self._mark(Verified(account_id, "hook", digest), now)

    def mark_at_signup(self, *, account_id: str, now: float) -> None:
        if self.verified_at_signup:
            self._mark(Verified(account_id, "none", None), now)

    def _mark(self, verified: Verified, now: float) -> None:
        if not self._accounts.mark_account_verified(verified.account_id, at=now, kind=verified.kind,
                                                    subject=verified.subject):  # fmt: skip
            raise Conflict("this e-mail address, phone or identity already verified another account",
                           hint="sign in with that account instead")  # fmt: skip

    def _part(self, method: str, part: _T | None) -> _T:
        if method not in self.methods or part is None:
            raise InvalidInput(f"this platform does not verify accounts by {method}",
                               hint=f"use one of: {', '.join(m for m in self.methods if m != 'none')}")  # fmt: skip
        return part


__all__ = [
    "METHODS",
    "EmailLinkVerifier",
    "IdentityCheck",
    "Mail",
    "MemoryOutbox",
    "Outbox",
    "SignupPuzzle",
    "SignupVerification",
    "SignupWork",
    "Verified",
    "VerifiedAccounts",
    "WorkParams",
    "calibrate",
    "measure_rate",
    "normalized_email",
    "solve_work",
]
