"""Command line: ``consentune …``.  Each typed error becomes one line on stderr and an exit code."""

from __future__ import annotations

import sys

from consentune.errors import (
    AccessDenied,
    AuthenticationFailed,
    Conflict,
    ConsentError,
    ConsentuneError,
    InvalidInput,
    NotFound,
    StorageError,
    Throttled,
    VerificationFailed,
)

EXIT_CODES: list[tuple[type[ConsentuneError], int]] = [
    (VerificationFailed, 6),
    (InvalidInput, 2),
    (NotFound, 3),
    (Conflict, 4),
    (ConsentError, 4),
    (AccessDenied, 5),
    (AuthenticationFailed, 5),
    (StorageError, 7),
    (Throttled, 8),
]


def exit_code_for(exc: ConsentuneError) -> int:
    return next((code for cls, code in EXIT_CODES if isinstance(exc, cls)), 1)


def main(argv: list[str] | None = None) -> int:
    from consentune.cli.app import app

    try:
        app(args=argv, standalone_mode=False)
    except ConsentuneError as exc:
        line = f"error: {exc.message}"
        if exc.hint:
            line += f" (hint: {exc.hint})"
        print(line, file=sys.stderr)
        return exit_code_for(exc)
    except SystemExit as exc:  # typer/click usage errors and explicit exits
        return int(exc.code or 0)
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # click exceptions in non-standalone mode
        from click import ClickException
        from click.exceptions import Abort, Exit

        if isinstance(exc, Exit):
            return exc.exit_code
        if isinstance(exc, Abort):
            return 130
        if isinstance(exc, ClickException):
            exc.show()
            return exc.exit_code
        raise
    return 0


__all__ = ["exit_code_for", "main"]
