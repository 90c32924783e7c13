"""The recipes file of bench/recipe_sweep.py (``bench/sweep_recipes.txt``), read by one
function for the sweep and for the model card: one recipe a line, a name then
``--option value`` pairs of ``agedetect train``; ``#`` starts a comment."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import NamedTuple


class Recipe(NamedTuple):
    name: str
    options: list[tuple[str, str]]  # (``--option``, value) pairs, in the line's order
    line: int  # where it is in the file, for messages


def read_recipe_lines(path: Path) -> list[Recipe]:
    """The file's recipes, in its order.

    Raises:
        SystemExit: a line whose options do not come in ``--name value`` pairs (named by
            file and line).
    """
    recipes = []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        words = shlex.split(line, comments=True)
        if not words:
            continue
        name, options = words[0], words[1:]
        if len(options) % 2 or not all(flag.startswith("--") for flag in options[::2]):
            raise SystemExit(f"{path}:{number}: options come in --name value pairs: {line!r}")
        recipes.append(Recipe(name, list(zip(options[::2], options[1::2])), number))
    return recipes
