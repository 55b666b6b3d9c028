"""Shared pieces of the command line: consoles, verbosity, progress bars and the one error path.

Every user mistake or file-system failure ends the same way: ``error: <one line>`` on stderr and
exit status 2. Commands call :func:`fail` for the mistakes they detect themselves; everything else
that is a user-input or file-system error (``OSError``, an unreadable image, a decompression bomb,
an :class:`~privlens.outputs.OutputError`, ...) is caught once, in :class:`PrivlensGroup`, the
root command group. Messages are printed as plain text: rich markup in a user's path (``[b]``) is
never interpreted.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator
from typing import NoReturn, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from rich.text import Text
from typer.core import TyperGroup

console = Console(highlight=False)
err_console = Console(stderr=True, highlight=False)

T = TypeVar("T")

#: -1 quiet (errors only), 0 normal, 1 verbose. Set by the root options ``--quiet``/``--verbose``.
_verbosity = 0


def set_verbosity(level: int) -> None:
    """-1: only errors and results; 0: normal; 1: also debug details."""
    global _verbosity
    _verbosity = level


def verbosity() -> int:
    return _verbosity


def plain(text: object) -> Text:
    """``text`` as a rich Text: printed verbatim, no markup interpreted (safe for user paths)."""
    return Text(str(text))


def say(message: object) -> None:
    """A result line on stdout (always shown, also with ``--quiet``), printed verbatim."""
    console.print(plain(message), soft_wrap=True)


def info(message: object, style: str = "dim") -> None:
    """A progress or status line on stderr, hidden by ``--quiet``."""
    if _verbosity >= 0:
        err_console.print(Text(str(message), style=style), soft_wrap=True)


def debug(message: object) -> None:
    """A detail line on stderr, shown only with ``--verbose``."""
    if _verbosity >= 1:
        err_console.print(Text(str(message), style="dim"), soft_wrap=True)


def warn(message: object) -> None:
    """A warning on stderr (shown even with ``--quiet``: warnings concern the user's data)."""
    err_console.print(Text.assemble(("warning: ", "bold yellow"), str(message)), soft_wrap=True)


def skipped(path: object, reason: object) -> None:
    """One line per skipped input, on stderr."""
    if _verbosity >= 0:
        err_console.print(Text.assemble(("skipped ", "yellow"), f"{path}: {reason}"), soft_wrap=True)


def fail(message: str) -> NoReturn:
    """Print ``error: message`` (one plain line, stderr) and exit with status 2."""
    err_console.print(Text.assemble(("error: ", "bold red"), " ".join(str(message).split())), soft_wrap=True)
    raise typer.Exit(code=2)


def check_seed(seed: int) -> None:
    """Refuse a negative ``--seed`` with one error line: numpy cannot take one, and torch would
    quietly wrap it to another seed."""
    if seed < 0:
        fail(f"--seed must be >= 0, got {seed}")


def progress(items: Iterable[T], total: int | None = None, description: str = "") -> Iterator[T]:
    """Iterate ``items`` with a progress bar on stderr (none with ``--quiet`` or off a terminal)."""
    if _verbosity < 0 or not err_console.is_terminal:
        yield from items
        return
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=err_console, transient=True) as bar:
        yield from bar.track(items, total=total, description=escape(description))


@contextlib.contextmanager
def status(message: str) -> Iterator[None]:
    """A spinner with ``message`` while a long step without a count runs (stderr, terminal only)."""
    info(message)
    if _verbosity < 0 or not err_console.is_terminal:
        yield
        return
    with err_console.status(escape(message)):
        yield


class StepProgress:
    """A live line for long jobs that report steps as messages (attacks, evaluation, the demo).

    Use as a context manager; call it with each message. On a terminal it shows a spinner with
    the current step, the step count and the elapsed time (stderr); every message is also
    printed as a line (hidden by ``--quiet``). ``total`` (if known) turns the spinner into a bar.
    """

    def __init__(self, description: str, total: int | None = None) -> None:
        self.description = description
        self.total = total
        self._bar = None
        self._task = None

    def __enter__(self) -> StepProgress:
        if _verbosity >= 0 and err_console.is_terminal:
            from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

            columns = [SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn()]
            if self.total is not None:
                columns.insert(2, BarColumn())
            self._bar = Progress(*columns, console=err_console, transient=True)
            self._bar.start()
            self._task = self._bar.add_task(escape(self.description), total=self.total)
        return self

    def __call__(self, message: str) -> None:
        info(message)
        if self._bar is not None:
            self._bar.update(self._task, advance=1, description=escape(f"{self.description}: {message}"))

    def __exit__(self, *exc) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None


def user_error_types() -> tuple[type[BaseException], ...]:
    """The exceptions that mean bad user input or a file-system failure (never a bug)."""
    from PIL import Image

    from privlens.data.images import ImageFileError
    from privlens.optics.lensfile import LensFileError
    from privlens.outputs import OutputError

    types: list[type[BaseException]] = [
        OSError,
        Image.DecompressionBombError,
        ImageFileError,
        LensFileError,
        OutputError,
    ]
    for module, name in (
        ("privlens.optics.hardware", "HardwareFileError"),
        ("privlens.train.config", "ConfigError"),
        ("privlens.anonymize.pipeline", "AnonymizeError"),
        ("privlens.train.checkpoint", "CheckpointError"),
        ("privlens.models.errors", "ModelFileError"),
        ("privlens.data.datasets", "DatasetLayoutError"),
        ("privlens.eval.weights", "WeightsFileError"),
    ):
        with contextlib.suppress(ImportError, AttributeError):
            types.append(getattr(__import__(module, fromlist=[name]), name))
    return tuple(types)


def describe(error: BaseException) -> str:
    """One line for a user error: the message, with the file name for OS errors."""
    if isinstance(error, OSError) and error.strerror:
        where = f"{error.filename}: " if error.filename else ""
        return f"{where}{error.strerror}"
    return str(error) or type(error).__name__


def run_guarded(function: Callable[[], T]) -> T:
    """Call ``function``; user errors become :func:`fail`, Ctrl-C becomes exit status 130."""
    try:
        return function()
    except user_error_types() as error:
        fail(describe(error))
    except MemoryError:
        fail("out of memory; try a smaller --size or --batch-size, or a lower image pixel limit")
    except KeyboardInterrupt:
        err_console.print(Text("interrupted", style="bold red"))
        raise typer.Exit(code=130) from None


class PrivlensGroup(TyperGroup):
    """The root command group: one error path for every sub-command (see the module docstring)."""

    def invoke(self, ctx):  # noqa: D401 - click API
        return run_guarded(lambda: super(PrivlensGroup, self).invoke(ctx))


def exit_nothing_written(count: int) -> None:
    """Exit status 1 when a job wrote nothing (every input skipped)."""
    if count == 0:
        raise typer.Exit(code=1)
