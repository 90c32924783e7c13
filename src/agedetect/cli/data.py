"""``agedetect data ...``: prepare and report on datasets."""

from __future__ import annotations

import typer

from agedetect.cli import app

data_app = typer.Typer(help="Prepare face datasets and report what is in them.", no_args_is_help=True)
app.add_typer(data_app, name="data")
