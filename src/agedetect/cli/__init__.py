"""The ``agedetect`` command line: thin Typer commands over the Python API.

Each command group lives in its own module; this one only assembles them.
"""

from __future__ import annotations

from typing import Optional

import typer

app = typer.Typer(
    name="agedetect",
    help="Estimate ages from face photos: prepare data, train, evaluate, predict, serve.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _print_version(value: bool) -> None:
    if value:
        from agedetect import __version__

        typer.echo(f"agedetect {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: Optional[bool] = typer.Option(
        None, "--version", callback=_print_version, is_eager=True, help="Print the version and exit."),
) -> None:
    """Estimate ages from face photos: prepare data, train, evaluate, predict, serve."""

# Each module registers its commands on `app`.
from agedetect.cli import data as _data  # noqa: E402
from agedetect.cli import models as _models  # noqa: E402
from agedetect.cli import uses as _uses  # noqa: E402
from agedetect.cli import predict as _predict  # noqa: E402
from agedetect.cli import serve as _serve  # noqa: E402

__all__ = ["app"]
