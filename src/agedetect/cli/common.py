"""Helpers every command shares: error reporting, the two streams, JSON output.

Results (tables, JSON, CSV) go to stdout, through :func:`results`; messages and progress
to stderr, through :data:`console`. Anything from outside (file names, error messages) is
printed as plain text, never as Rich markup: ``party[red].jpg`` stays ``party[red].jpg``.

Exit codes of every command:

====  ===================================================================
0     done (``screen``: every face passes)
2     bad input: a missing or unreadable file, a bad option, nothing usable
      (``predict``: no input could be read)
3     ``screen`` only: referred (a face did not pass, or no face was found)
1     an internal inconsistency (a bug to report)
130   interrupted
====  ===================================================================
"""

from __future__ import annotations

import json
import sys
from contextlib import contextmanager
from typing import Any, Iterator

import typer
from rich.console import Console
from rich.markup import escape
from rich.text import Text

from agedetect.errors import AgeDetectError

#: Human-facing messages and progress go to stderr so stdout stays clean for --json.
console = Console(stderr=True, soft_wrap=True)

#: Exit code of ``screen`` when the photo is referred (see the table above).
EXIT_REFER = 3


def results() -> Console:
    """A console on stdout for a command's result (a table); wide when piped to a file."""
    out = Console(highlight=False)
    return out if out.is_terminal else Console(width=200, highlight=False)


def plain(value: object, style: str = "") -> Text:
    """``value`` as text that Rich prints verbatim (no markup), for table cells."""
    return Text(str(value), style=style)


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
