"""Helpers every command shares: error reporting and JSON output."""

from __future__ import annotations

import json
import sys
from contextlib import contextmanager
from typing import Any, Iterator

import typer
from rich.console import Console
from rich.markup import escape

from agedetect.errors import AgeDetectError

#: Human-facing messages and progress go to stderr so stdout stays clean for --json.
console = Console(stderr=True, soft_wrap=True)


@contextmanager
def user_errors() -> Iterator[None]:
    """Turn agedetect's own errors into a one-line message and exit code 2, no traceback."""
    try:
        yield
    except AgeDetectError as error:
        # escape: a message is text, not markup ("pip install 'agedetect[ray]'" keeps its brackets)
        console.print(f"[bold red]error:[/] {escape(str(error))}", highlight=False)
        raise typer.Exit(2) from None
    except KeyboardInterrupt:
        console.print("[yellow]interrupted[/]")
        raise typer.Exit(130) from None


def print_json(payload: Any) -> None:
    """One JSON document on stdout."""
    sys.stdout.write(json.dumps(payload, indent=2, default=str) + "\n")
    sys.stdout.flush()
