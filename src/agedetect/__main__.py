"""``python -m agedetect`` runs the command line, like the ``agedetect`` script."""

from agedetect.cli import app

app(prog_name="agedetect")
