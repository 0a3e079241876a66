"""Command line: ``consentune …``.  Each error becomes one line on stderr and an exit code.

Typed :class:`~consentune.errors.ConsentuneError` subclasses map to the codes in
``EXIT_CODES``; usage errors found by the argument parser (missing or unknown
command, argument or option, a value of the wrong type) exit with 2.  Both print
``error: … (hint: …)``.  Anything else is a bug: one line too, with the way to
see its traceback (``CONSENTUNE_TRACEBACK=1``).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

import typer

from consentune.cli.common import SomeFilesFailed, error_line
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
USAGE_EXIT = 2
BUG_EXIT = 70  # EX_SOFTWARE
PROG = "consentune"


def exit_code_for(exc: ConsentuneError) -> int:
    if isinstance(exc, SomeFilesFailed):
        return exc.exit_code
    return next((code for cls, code in EXIT_CODES if isinstance(exc, cls)), 1)


def main(argv: list[str] | None = None) -> int:
    from consentune.cli.app import app

    try:
        code = app(args=argv, prog_name=PROG, standalone_mode=False)
    except ConsentuneError as exc:
        _print_error(exc.message, exc.hint)
        return exit_code_for(exc)
    except typer.Exit as exc:
        return exc.exit_code
    except (typer.Abort, KeyboardInterrupt):
        return 130
    except BrokenPipeError:  # the reader went away (`consentune tracks | head`): stop quietly, as cat does
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except typer.TyperException as exc:  # parser errors, from typer's own copy of click
        _print_error(*_usage_message(exc, sys.argv[1:] if argv is None else argv))
        return exc.exit_code
    except Exception as exc:
        if os.environ.get("CONSENTUNE_TRACEBACK") == "1":
            raise
        _print_error(
            f"internal error ({type(exc).__name__}): {exc}",
            "this is a bug in consentune; rerun with CONSENTUNE_TRACEBACK=1 and report the traceback",
        )
        return BUG_EXIT
    return code if isinstance(code, int) else 0


def _print_error(message: str, hint: str) -> None:
    print(error_line(message, hint), file=sys.stderr)


def _usage_message(exc: typer.TyperException, argv: Sequence[str]) -> tuple[str, str]:
    """A parser error as (message, hint): the message without click's capitals, the hint naming the help page."""
    ctx = getattr(exc, "ctx", None)
    path = ctx.command_path if ctx is not None else _command_path(argv)
    message = exc.format_message().strip()
    commands = sorted(getattr(ctx.command, "commands", {})) if ctx is not None else []
    if "\n" in message or message.startswith("Missing command"):  # a group run without a subcommand
        what = "command" if path == PROG else f"subcommand for '{path}'"
        return f"missing {what}", f"one of {', '.join(commands)}; see '{path} --help'"
    message = message.rstrip(".")
    return message[:1].lower() + message[1:], f"see '{path} --help'"


def _command_path(argv: Sequence[str]) -> str:
    """``consentune`` and the subcommand words that lead ``argv`` (for errors raised without a context)."""
    from consentune.cli.app import app

    command: object = typer.main.get_command(app)
    words = [PROG]
    for word in argv:
        command = getattr(command, "commands", {}).get(word)
        if command is None:
            break
        words.append(word)
    return " ".join(words)


__all__ = ["exit_code_for", "main"]
