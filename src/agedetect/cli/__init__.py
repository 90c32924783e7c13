"""The ``agedetect`` command line: thin Typer commands over the Python API.

Each command group lives in its own module; this one only assembles them.
"""

from __future__ import annotations

import typer

app = typer.Typer(
    name="agedetect",
    help="Estimate ages from face photos: prepare data, train, evaluate, predict, serve.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

# Each module registers its commands on `app`.
from agedetect.cli import data as _data  # noqa: E402
from agedetect.cli import models as _models  # noqa: E402
from agedetect.cli import uses as _uses  # noqa: E402
from agedetect.cli import predict as _predict  # noqa: E402
from agedetect.cli import serve as _serve  # noqa: E402

__all__ = ["app"]
