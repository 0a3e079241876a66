"""Shared CLI helpers: open the service once per command, print JSON or tables."""

from __future__ import annotations

import json
from typing import Any

from rich.console import Console

from consentune.service import Consentune, open_service

console = Console(soft_wrap=True)
ADMIN_ACTOR = "admin:cli"


def service() -> Consentune:
    return open_service()


def print_json(value: Any) -> None:
    print(json.dumps(value, indent=2, sort_keys=True, default=str))
