"""The docs say only what is true of the repository: links resolve, cited paths exist, and every
``frictionlens`` command they show (with its options) is one the CLI accepts."""

from __future__ import annotations

import contextlib
import io
import re
from functools import cache
from pathlib import Path

import pytest

from frictionlens.cli import main

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]

#: files the recipes of docs/architecture.md tell a reader to create
PROPOSED = {"instrumentation/mistralai.py", "tests/test_mistralai.py"}

_FENCE = re.compile(r"^```.*?^```", re.M | re.S)
_LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")
_INLINE = re.compile(r"`([^`]+)`")
_PATH = re.compile(
    r"(?<![\w./-])(?:frictionlens|instrumentation|processors|exporters|collector|tests|bench|examples|docs|\.ci)/"
    r"[\w./*-]*"
)
_COMMAND = re.compile(r"(?<![\w./\[-])frictionlens ([a-z][a-z-]*)([^`#|>&;\n]*)")
_OPTION = re.compile(r"(?<![\w-])(--?[a-z][a-z-]*)")


def _ids(paths: list[Path]) -> list[str]:
    return [str(p.relative_to(ROOT)) for p in paths]


def _code(text: str) -> list[str]:
    """Inline code spans (outside fenced blocks) and fenced blocks, as written."""
    fenced = _FENCE.findall(text)
    return fenced + _INLINE.findall(_FENCE.sub("", text))


@pytest.mark.parametrize("doc", DOCS, ids=_ids(DOCS))
def test_relative_links_point_to_files_that_exist(doc: Path):
    text = _FENCE.sub("", doc.read_text())
    targets = [t.split("#")[0] for t in _LINK.findall(text) if "://" not in t]
    missing = [t for t in targets if t and not (doc.parent / t).exists()]
    assert not missing, f"{doc.name} links to missing files: {missing}"


@pytest.mark.parametrize("doc", DOCS, ids=_ids(DOCS))
def test_cited_repository_paths_exist(doc: Path):
    text = _FENCE.sub("", doc.read_text())
    cited = {p.rstrip(".") for span in _INLINE.findall(text) for p in _PATH.findall(span)}
    missing = sorted(p for p in cited - PROPOSED if not list(ROOT.glob(p.rstrip("/"))))
    assert not missing, f"{doc.name} cites paths the repository lacks: {missing}"


@cache
def _help(command: str) -> tuple[int, str]:
    """Exit code and output of ``frictionlens COMMAND --help``."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            main([command, "--help"])
            code = 0
        except SystemExit as exc:
            code = int(exc.code or 0)
    return code, out.getvalue() + err.getvalue()


@pytest.mark.parametrize("doc", DOCS, ids=_ids(DOCS))
def test_documented_commands_and_options_exist(doc: Path):
    wrong = []
    for code in _code(doc.read_text()):
        for command, rest in _COMMAND.findall(code):
            status, usage = _help(command)
            if status != 0:
                wrong.append(f"frictionlens {command}")
                continue
            words = set(re.findall(r"--?[a-z][a-z-]*", usage))
            wrong += [
                f"frictionlens {command} {o}" for o in _OPTION.findall(rest) if o not in words
            ]
    assert not wrong, f"{doc.name} shows what the CLI does not accept: {wrong}"


def test_an_unknown_command_is_caught():
    """The check above can fail: argparse refuses a subcommand it does not know."""
    assert _help("no-such-command")[0] != 0
    assert _COMMAND.findall("run `frictionlens report --since 2h` then") == [
        ("report", " --since 2h")
    ]
