"""Shared pieces of the command line: consoles and the user-error exit."""

from __future__ import annotations

from typing import NoReturn

import typer
from rich.console import Console

console = Console()
err_console = Console(stderr=True)


def fail(message: str) -> NoReturn:
    """Print an error and exit with status 2 (no traceback for a user's mistake)."""
    err_console.print(f"[bold red]error:[/] {message}")
    raise typer.Exit(code=2)
