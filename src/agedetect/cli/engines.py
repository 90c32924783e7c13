"""What ``predict`` and ``audience`` share to run locally or on Ray (``--engine``):
their inputs (paths, folders, globs and ``--list``), the checks on the engine options,
and the Ray run with its reconciled counts."""

from __future__ import annotations

import enum
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional, Sequence

import typer

from agedetect.cli.common import console

if TYPE_CHECKING:
    from agedetect.ray_engine import RunSummary

# Help text is Rich markup: a backslash before [ keeps the brackets of the extra.
ENGINE_HELP = "local: processes on this machine; ray: an actor pool on Ray, here or on a cluster (pip install 'agedetect\\[ray]')."
ADDRESS_HELP = (
    "--engine ray: the cluster to join (auto, or HEAD:6379), from a node of it; default: $RAY_ADDRESS, "
    "else start Ray on this machine."
)
ACTORS_HELP = "--engine ray: actors, each loading the model once (default: one per CPU of the cluster)."
LIST_HELP = "A text file of more inputs, one path or file:// URI per line."


class Engine(str, enum.Enum):
    local = "local"
    ray = "ray"


def gather_inputs(paths: Optional[Sequence[str]], list_file: Optional[Path]) -> list[str]:
    """Files, folders and globs (:func:`agedetect.files.find_images`), then the lines of
    ``--list``: the same inputs, in the same order, for either engine."""
    from agedetect.batch import read_file_list
    from agedetect.files import find_images

    inputs = [str(path) for path in find_images(paths or [], videos=True)]  # both read videos
    if list_file is not None:
        inputs += read_file_list(list_file)
    if not inputs:
        raise typer.BadParameter("no images given (name files, folders or globs, or --list FILE)")
    return inputs


def check_options(engine: Engine, *, address: Optional[str], actors: Optional[int], out: Optional[Path],
                  workers: Optional[int], out_is_ray_only: bool) -> None:
    """Refuse options the chosen engine would ignore, saying which engine takes them."""
    if engine is Engine.local:
        given = [name for name, value in (("--address", address), ("--actors", actors)) if value is not None]
        if out_is_ray_only and out is not None:
            given.append("--out")
        if given:
            raise typer.BadParameter(f"{', '.join(given)} need --engine ray")
        return
    if workers is not None:
        raise typer.BadParameter("--workers is for the local engine; with --engine ray use --actors")
    if out is None:
        raise typer.BadParameter("--engine ray writes its results to a folder: give --out DIR")


def run_on_ray(files: list[str], out: Path, *, address: Optional[str], actors: Optional[int],
               model: Optional[Path], aligned: bool = False, video: Any = None) -> "RunSummary":
    """The Ray run; exits 1 if its counts do not add up (never expected: a bug to report)."""
    from agedetect import ray_engine

    ray_engine.require_ray()  # the install hint before anything starts
    where = address or os.environ.get("RAY_ADDRESS") or "a local Ray started here"
    console.print(f"{len(files)} input{'s' * (len(files) != 1)} to Ray ({where})...", style="dim", markup=False)
    summary = ray_engine.run(files, out, address=address, actors=actors, model=model, aligned=aligned, video=video)
    if not summary.reconciled:
        console.print(
            f"error: counts do not add up: {summary.files_seen} inputs but {summary.files_with_faces} with "
            f"faces + {summary.files_without_face} without + {summary.files_failed} failed; see "
            f"{out / 'summary.json'}", style="bold red", markup=False, highlight=False,
        )
        raise typer.Exit(1)
    return summary


def summary_line(summary: "RunSummary") -> str:
    s = summary
    reasons = ", ".join(f"{r}: {n}" for r, n in s.failed_reasons.items())
    return (
        f"{s.files_seen} images: {s.files_with_faces} with faces ({s.faces} faces), {s.files_without_face} "
        f"without a face, {s.files_failed} failed{f' ({reasons})' if reasons else ''}; "
        f"{s.actors} Ray actor{'s' * (s.actors != 1)}, {s.seconds:.1f} s. Faces in {s.faces_path}, "
        f"failures in {s.failures_path} (Parquet), counts in {Path(s.out) / 'summary.json'}"
    )
