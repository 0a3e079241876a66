"""Readiness: every part a request may need answers, or the report names the part that does not."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

Probe = Callable[[], None]  # returns when the part is reachable; raises otherwise


@dataclass(frozen=True)
class PartStatus:
    name: str
    ok: bool
    ms: float
    error: str | None = None


@dataclass(frozen=True)
class Readiness:
    parts: tuple[PartStatus, ...]

    @property
    def ok(self) -> bool:
        return all(p.ok for p in self.parts)

    @property
    def failing(self) -> list[str]:
        return [p.name for p in self.parts if not p.ok]

    def to_dict(self) -> dict[str, object]:
        return {
            "status": "ready" if self.ok else "not ready",
            "failing": self.failing,
            "parts": {
                p.name: {"ok": p.ok, "ms": round(p.ms, 2), **({"error": p.error} if p.error else {})}
                for p in self.parts
            },
        }


def check_parts(probes: Mapping[str, Probe]) -> Readiness:
    """Run each probe once; a probe that raises marks its part as failing (with the error's first line)."""
    out = []
    for name, probe in probes.items():
        started = time.perf_counter()
        try:
            probe()
        except Exception as exc:  # any failure of a dependency means "not ready", never a 500
            text = (str(exc).splitlines() or [type(exc).__name__])[0][:300]
            out.append(PartStatus(name, False, (time.perf_counter() - started) * 1000, f"{type(exc).__name__}: {text}"))
        else:
            out.append(PartStatus(name, True, (time.perf_counter() - started) * 1000))
    return Readiness(tuple(out))


__all__ = ["PartStatus", "Probe", "Readiness", "check_parts"]
