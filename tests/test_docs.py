"""Every command and option the documentation names exists in the ``privlens`` command line.

Checked in README.md and docs/*.md:

* every ``privlens <command> ...`` in a code span or code block names an existing (sub)command,
  and every ``--option`` written after it on that line belongs to that command (or the root);
* in a section whose heading names a command, the options in the first column of its tables
  belong to that command;
* every ``--option`` anywhere in the pages exists in some privlens command, unless the line runs
  another program (``python``, ``torchrun``, ``pip``, ``bash``, ...).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import typer

from privlens.cli import app

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
# a line that names one of these is about another program's options (the authors' scripts, ...)
OTHER_PROGRAMS = (
    "python",
    "torchrun",
    "pip",
    "bash",
    "make",
    "apt",
    "pytest",
    "ruff",
    "download",
    ".py",
    "authors",
)
OPTION = re.compile(r"(?<![\w-])--[a-z][a-z0-9_-]*")
INVOCATION = re.compile(r"privlens((?:\s+[a-z][a-z-]*)+)")


def _command_tree():
    root = typer.main.get_command(app)
    return root


def _options(command) -> set[str]:
    names: set[str] = {"--help"}
    for param in command.params:
        names.update(n for n in (*param.opts, *param.secondary_opts) if n.startswith("--"))
    return names


ROOT_COMMAND = _command_tree()
ROOT_OPTIONS = _options(ROOT_COMMAND)


def _all_options(command=ROOT_COMMAND) -> set[str]:
    names = set(_options(command))
    for sub in getattr(command, "commands", {}).values():
        names |= _all_options(sub)
    return names


# options of privlens's own scripts (benchmarks, python -m privlens.train.stage2_shipped, ...)
SCRIPT_OPTIONS = {
    match
    for path in [*ROOT.glob("benchmarks/*.py"), *ROOT.glob("src/privlens/**/*.py")]
    for match in re.findall(r"add_argument\(\s*[\"'](--[a-z][a-z0-9_-]*)", path.read_text(encoding="utf-8"))
}
ALL_OPTIONS = _all_options() | SCRIPT_OPTIONS


def _resolve(words: list[str]):
    """Walk ``words`` down the command tree; returns (command, path) or raises with the bad word."""
    command, path = ROOT_COMMAND, []
    for word in words:
        subcommands = getattr(command, "commands", None)
        if not subcommands:
            break
        if word not in subcommands:
            raise KeyError(f"privlens {' '.join([*path, word])}")
        command = subcommands[word]
        path.append(word)
    return command, path


def _code_lines(text: str):
    """(line number, text) of code: fenced blocks whole, and inline code spans elsewhere."""
    fenced = False
    for number, line in enumerate(text.splitlines(), start=1):
        if line.strip().startswith("```"):
            fenced = not fenced
            continue
        if fenced:
            yield number, line, True
        else:
            for span in re.findall(r"`([^`]+)`", line):
                yield number, span, False


def _invocations():
    for page in PAGES:
        text = page.read_text(encoding="utf-8")
        for number, code, _ in _code_lines(text):
            for match in INVOCATION.finditer(code):
                if code[: match.start()].rstrip().endswith((".", "/")):
                    continue  # privlens.faces, src/privlens/...
                yield page.name, number, code, match


def test_every_documented_command_and_its_options_exist():
    problems = []
    checked = 0
    for page, number, code, match in _invocations():
        words = match.group(1).split()
        try:
            command, path = _resolve(words)
        except KeyError as error:
            problems.append(f"{page}:{number}: no command {error.args[0]}")
            continue
        known = _options(command) | ROOT_OPTIONS
        for option in OPTION.findall(code[match.end() :]):
            if option not in known:
                problems.append(f"{page}:{number}: privlens {' '.join(path)} has no {option}")
        checked += 1
    assert checked > 40, "the pages should show the commands"
    assert not problems, "\n".join(problems)


def test_option_tables_belong_to_the_command_of_their_section():
    problems = []
    for page in PAGES:
        command = None
        for number, line in enumerate(page.read_text(encoding="utf-8").splitlines(), start=1):
            if line.startswith("#"):
                found = [m for m in INVOCATION.finditer(line) if not line[: m.start()].endswith(".")]
                command = None
                if found:
                    try:
                        command, _ = _resolve(found[-1].group(1).split())
                    except KeyError as error:
                        problems.append(f"{page.name}:{number}: no command {error.args[0]}")
                continue
            if command is None or not line.startswith("|"):
                continue
            first_cell = line.split("|")[1]
            row_command = command
            if "`" not in first_cell:  # header or prose row
                continue
            if getattr(command, "commands", None):  # a group's table: rows name 'lens create ...'
                words = re.findall(r"[a-z][a-z-]*", first_cell.strip(" `").split("--")[0])
                try:
                    row_command, _ = _resolve(words)
                except KeyError as error:
                    problems.append(f"{page.name}:{number}: no command {error.args[0]}")
                    continue
            for option in OPTION.findall(first_cell):
                if option not in _options(row_command) | ROOT_OPTIONS:
                    problems.append(f"{page.name}:{number}: {row_command.name} has no {option}")
    assert not problems, "\n".join(problems)


def test_every_option_named_in_prose_exists():
    """A bare option in prose (`--size 64`) names a privlens option, unless the line is about
    another program."""
    problems = []
    for page in PAGES:
        for number, line, fenced in _code_lines(page.read_text(encoding="utf-8")):
            if fenced or not line.strip().startswith("--"):
                continue
            full_line = page.read_text(encoding="utf-8").splitlines()[number - 1]
            if any(word in full_line for word in OTHER_PROGRAMS):
                continue
            for option in OPTION.findall(line):
                if option not in ALL_OPTIONS:
                    problems.append(f"{page.name}:{number}: {option}")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_links_between_pages_resolve(page):
    for target in re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", page.read_text(encoding="utf-8")):
        if "://" in target:
            continue
        assert (page.parent / target).exists(), f"{page.name} links to missing {target}"
