"""Every verb, walked from the typer command tree, fails usage errors with one line, a hint and exit 2."""

from __future__ import annotations

import os
import subprocess
import sys
import typing
from collections.abc import Iterator
from pathlib import Path
from types import NoneType, UnionType
from typing import Any

import pytest
import typer.main

from consentune.cli.app import app
from tests.cli import run

Capture = pytest.CaptureFixture[str]
# verbs that run until stopped or for minutes when they parse fine; never run them bare here
LONG_RUNNING = {
    "demo",
    "serve",
    "bench core",
    "bench fraud",
    "bench organize",
    "bench recommend",
    "bench shield",
    "bench claims",
    "bench workers",
    "bench ledger",
    "bench scale",
    "bench jobs",
    "bench jobs-train",
    "bench watermark",
    "ledger integrate",
}


def _walk(command: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    subcommands = getattr(command, "commands", None)
    if subcommands is None:
        yield path, command
        return
    yield path, command
    for name, sub in sorted(subcommands.items()):
        yield from _walk(sub, (*path, name))


TREE = list(_walk(typer.main.get_command(app)))
GROUPS = [path for path, cmd in TREE if hasattr(cmd, "commands")]
VERBS = {path: cmd for path, cmd in TREE if not hasattr(cmd, "commands")}


def _ids(paths: typing.Iterable[tuple[str, ...]]) -> list[str]:
    return [" ".join(p) or "(bare)" for p in paths]


def _base_type(command: Any, name: str) -> type:
    """The parameter's annotation without ``| None`` and ``list[...]``."""
    hint = typing.get_type_hints(command.callback)[name]
    if isinstance(hint, UnionType):
        hint = next(a for a in typing.get_args(hint) if a is not NoneType)
    if typing.get_origin(hint) is list:
        hint = typing.get_args(hint)[0]
    assert isinstance(hint, type)
    return hint


def _placeholder(command: Any, name: str) -> str:
    kind = _base_type(command, name)
    return {int: "1", float: "1.5"}.get(kind, "x")


def _required_arguments(command: Any) -> list[str]:
    return [_placeholder(command, p.name) for p in command.params if p.param_type_name == "argument" and p.required]


def _assert_one_error_line(code: int, out: str, err: str, *, expected_code: int | None = 2) -> str:
    assert "Traceback" not in out + err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("error: ") and "(hint: " in lines[0], lines[0]
    assert "internal error" not in lines[0], lines[0]  # the catch-all for bugs must not be what answered
    if expected_code is None:
        assert code != 0
    else:
        assert code == expected_code, lines[0]
    return lines[0]


def test_the_tree_is_walked() -> None:
    assert ("consent", "set") in VERBS and ("ledger",) in GROUPS and () in GROUPS
    assert len(VERBS) >= 40


@pytest.mark.parametrize("path", GROUPS, ids=_ids(GROUPS))
def test_a_group_without_a_subcommand_names_the_subcommands(capsys: Capture, path: tuple[str, ...]) -> None:
    line = _assert_one_error_line(*run(capsys, *path))
    assert "missing" in line and "--help" in line
    some_verb = sorted(VERBS)[0] if not path else next(v for v in VERBS if v[: len(path)] == path)
    assert some_verb[len(path)] in line


@pytest.mark.parametrize("path", sorted(VERBS), ids=_ids(sorted(VERBS)))
def test_unknown_option(capsys: Capture, path: tuple[str, ...]) -> None:
    line = _assert_one_error_line(*run(capsys, *path, "--no-such-option"))
    assert "no such option" in line and f"consentune {' '.join(path)} --help" in line


def test_unknown_command(capsys: Capture) -> None:
    line = _assert_one_error_line(*run(capsys, "no-such-verb"))
    assert "no such command 'no-such-verb'" in line


WITH_REQUIRED_ARGUMENT = [p for p, c in sorted(VERBS.items()) if _required_arguments(c)]


@pytest.mark.parametrize("path", WITH_REQUIRED_ARGUMENT, ids=_ids(WITH_REQUIRED_ARGUMENT))
def test_no_arguments(capsys: Capture, path: tuple[str, ...]) -> None:
    line = _assert_one_error_line(*run(capsys, *path))
    assert "missing argument" in line or "missing option" in line


def _required_options(command: Any) -> list[Any]:
    return [p for p in command.params if p.param_type_name == "option" and p.required]


WITH_REQUIRED_OPTION = [p for p, c in sorted(VERBS.items()) if _required_options(c)]


@pytest.mark.parametrize("path", WITH_REQUIRED_OPTION, ids=_ids(WITH_REQUIRED_OPTION))
def test_missing_required_option(capsys: Capture, path: tuple[str, ...]) -> None:
    command = VERBS[path]
    line = _assert_one_error_line(*run(capsys, *path, *_required_arguments(command)))
    assert f"missing option '{_required_options(command)[0].opts[0]}'" in line


def _value_options(command: Any) -> list[Any]:
    return [p for p in command.params if p.param_type_name == "option" and not p.is_flag]


WITH_VALUE_OPTION = [p for p, c in sorted(VERBS.items()) if _value_options(c)]


@pytest.mark.parametrize("path", WITH_VALUE_OPTION, ids=_ids(WITH_VALUE_OPTION))
def test_option_without_its_value(capsys: Capture, path: tuple[str, ...]) -> None:
    command = VERBS[path]
    option = _value_options(command)[-1].opts[0]
    line = _assert_one_error_line(*run(capsys, *path, *_required_arguments(command), option))
    assert f"option '{option}' requires an argument" in line and f"consentune {' '.join(path)} --help" in line


# every value of their only parameter (track ids, removed or not) is one the parser must accept
ANY_VALUE_PARSES = {("index", "add"), ("index", "remove")}


def _bad_value(command: Any) -> tuple[list[str], str]:
    """Arguments giving ``command`` a value the parser refuses, and a fragment of the expected message."""
    args = _required_arguments(command)
    for p in command.params:
        if p.param_type_name == "option" and not p.is_flag and _base_type(command, p.name) in (int, float):
            required = [x for q in _required_options(command) if q is not p for x in (q.opts[0], "x")]
            return [*args, *required, p.opts[0], "not-a-number"], f"invalid value for '{p.opts[0]}'"
    args += [x for q in _required_options(command) for x in (q.opts[0], "x")]
    for index, p in enumerate(a for a in command.params if a.param_type_name == "argument"):
        if _base_type(command, p.name) is int:
            bad = list(args)
            bad[index] = "not-a-number"
            return bad, f"invalid value for '{p.name}'"
    flags = [p for p in command.params if p.param_type_name == "option" and p.is_flag]
    if flags:
        return [*args, f"{flags[0].opts[0]}=maybe"], "does not take a value"
    return [*args, "surplus"], "unexpected extra argument"


PARSER_BAD_VALUE = [p for p in sorted(VERBS) if p not in ANY_VALUE_PARSES]


@pytest.mark.parametrize("path", PARSER_BAD_VALUE, ids=_ids(PARSER_BAD_VALUE))
def test_value_the_parser_refuses(capsys: Capture, path: tuple[str, ...]) -> None:
    args, fragment = _bad_value(VERBS[path])
    line = _assert_one_error_line(*run(capsys, *path, *args))
    assert fragment in line


SEMANTIC = [
    (["consent", "set", "Ada", "recommend", "perhaps"], 2, "allow or deny"),
    (["consent", "set", "Ada", "recommend", "allow", "--valid-until", "soon"], 2, "not an ISO 8601 time"),
    (["consent", "set", "Ada", "no-such-purpose", "allow"], 4, "no-such-purpose"),
    (["consent", "set", "Ada", "recommend", "allow", "--valid-until", "9999-12-31T23:59:59-14:00"], 2, "years 1..9999"),
    (["consent", "show", "Nobody"], 3, "unknown artist"),
    (["keys", "create", "--role", "emperor"], 2, "unknown role"),
    (["simulate", "plays", "--out", "{home}/p.txt"], 2, "unknown output type"),
    (["simulate", "plays", "--out", "{home}/p.csv", "--camouflage", "paint"], 2, "unknown camouflage"),
    (["ledger", "verify", "{home}/none.json", "--public-key", "k+1"], 2, "cannot read"),
    (["ledger", "verify", "{home}/none.json", "--public-key", "not-a-key"], 2, "cannot read"),
    (["terms", "publish", "{home}/none.json"], 2, "cannot read terms"),
    (["plays", "import", "{home}/none.csv"], 2, "does not exist"),
    (["fraud", "scan", "--plays", "{home}/none.csv"], 2, "none.csv"),
    (["fraud", "watch", "--plays", "{home}/none.csv"], 2, "none.csv"),
    (["identify", "{home}/none.wav"], 2, "cannot read"),
    (["ingest", "{home}/none.wav", "--artist", "Ada"], None, "none.wav"),
    (["organize", "describe", "trk_missing"], 3, "trk_missing"),
    (["organize", "duplicates", "trk_missing"], 3, "trk_missing"),
    (["index", "add", "trk_missing"], 3, "trk_missing"),
    (["organize", "similar", "trk_missing", "--n", "0"], 2, "--n"),
    (["shield", "unblock", "999999"], 3, "999999"),
    (["keys", "revoke", "key_missing"], 3, "key_missing"),
    (["matches", "trk_missing"], 3, "trk_missing"),
    (["terms", "accept", "Ada", "99"], None, "99"),
]


@pytest.mark.parametrize(("args", "code", "fragment"), SEMANTIC, ids=[" ".join(a[:3]) for a, _c, _f in SEMANTIC])
def test_values_the_commands_refuse(
    home: Path, capsys: Capture, args: list[str], code: int | None, fragment: str
) -> None:
    run(capsys, "artist", "add", "Ada")
    filled = [a.format(home=home) for a in args]
    line = _assert_one_error_line(*run(capsys, *filled), expected_code=code)
    assert fragment in line


QUICK = [p for p, c in sorted(VERBS.items()) if not _required_arguments(c) and not _required_options(c)]


def test_verbs_that_need_nothing_run_on_an_empty_data_folder(home: Path, capsys: Capture) -> None:
    for path in QUICK:
        if " ".join(path) in LONG_RUNNING:
            continue
        code, out, err = run(capsys, *path)
        assert "Traceback" not in out + err, path
        if code != 0:
            _assert_one_error_line(code, out, err, expected_code=None)


@pytest.mark.parametrize(
    "args",
    [[], ["no-such-verb"], ["ingest"], ["consent", "set"], ["ledger"], ["tracks", "--limit", "many"]],
    ids=["bare", "unknown", "ingest", "consent set", "ledger", "bad int"],
)
def test_real_process(tmp_path: Path, args: list[str]) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONSENTUNE_")}
    env["CONSENTUNE_HOME"] = str(tmp_path / "home")
    done = subprocess.run(
        [sys.executable, "-m", "consentune", *args], capture_output=True, text=True, env=env, check=False
    )
    _assert_one_error_line(done.returncode, done.stdout, done.stderr)
    assert done.stdout == ""
    assert not (tmp_path / "home").exists()  # a usage error touches no data
