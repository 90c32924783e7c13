"""``agedetect predict``: ages of every face in many photos, as a table, JSON or CSV.

One row per face; an image with no face, or one that cannot be read, gets one row with
``error`` set, so every input is accounted for and one bad file never stops a batch.
Images are spread over worker processes that each load the model once; with
``--engine ray``, over a Ray actor pool instead (agedetect.ray_engine), rows to Parquet.
"""

from __future__ import annotations

import csv
import enum
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import typer

from agedetect.batch import NO_FACE_MESSAGE, VIDEO_COLUMNS, csv_columns, flat_row
from agedetect.cli import app
from agedetect.cli.common import console, plain, print_json, results, user_errors
from agedetect.cli.engines import (
    ACTORS_HELP, ADDRESS_HELP, ENGINE_HELP, LIST_HELP, Engine, check_options, gather_inputs, run_on_ray, summary_line,
)
from agedetect.cli.videos import (
    FPS_HELP, MAX_SECONDS_HELP, count_videos, finish, video_options, video_progress,
)
from agedetect.files import default_workers, parallel_map
from agedetect.video import DEFAULT_FPS, DEFAULT_MAX_SECONDS, report_progress, set_progress_queue

#: Aligned chips go to a worker in groups this large, so the model sees whole batches.
CHIPS_PER_TASK = 64


class OutputFormat(str, enum.Enum):
    table = "table"
    json = "json"
    csv = "csv"


@app.command("predict")
def predict_command(
    paths: Optional[list[str]] = typer.Argument(None, help="Image files, folders (searched recursively) or glob patterns."),
    output: OutputFormat = typer.Option(OutputFormat.table, "--format", "-f", help="How to print the rows."),
    annotate: Optional[Path] = typer.Option(
        None, "--annotate", help="Write a copy of each image with boxes and ages drawn into this folder."
    ),
    workers: Optional[int] = typer.Option(None, "--workers", "-w", min=1, help="Processes (default: one per core)."),
    model: Optional[Path] = typer.Option(None, "--model", help="An exported .onnx (default: the shipped model)."),
    aligned: bool = typer.Option(
        False, "--aligned", help="Inputs are aligned UTKFace-framed face chips: skip detection (much faster)."
    ),
    list_file: Optional[Path] = typer.Option(None, "--list", help=LIST_HELP),
    engine: Engine = typer.Option(Engine.local, "--engine", help=ENGINE_HELP),
    address: Optional[str] = typer.Option(None, "--address", help=ADDRESS_HELP),
    actors: Optional[int] = typer.Option(None, "--actors", min=1, help=ACTORS_HELP),
    out: Optional[Path] = typer.Option(
        None, "--out", "-o", help="--engine ray: folder for faces/ and failures/ (Parquet) and summary.json."
    ),
    fps: float = typer.Option(DEFAULT_FPS, "--fps", help=FPS_HELP),
    max_seconds: float = typer.Option(DEFAULT_MAX_SECONDS, "--max-seconds", help=MAX_SECONDS_HELP),
    per_frame: bool = typer.Option(
        False, "--per-frame", help="Videos: a row per face per sampled frame instead of one per person."
    ),
) -> None:
    """Estimate the age of every face in the given images: one row per face (face 1 is the largest).

    A video (.mp4 .mov .m4v .webm .mkv .avi, animated GIF or WebP) gives one row per
    person, their age fused from every sampled frame, with start_s, end_s and frames.
    Exits 2 when no input could be read. With --engine ray the rows go to Parquet under
    --out and the counts are printed (as JSON with --format json)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from agedetect.inference import AgeEstimator

    check_options(engine, address=address, actors=actors, out=out, workers=workers, out_is_ray_only=True)
    if engine is Engine.ray and annotate is not None:
        raise typer.BadParameter("--annotate works with the local engine only")
    if engine is Engine.ray and output is OutputFormat.csv:
        raise typer.BadParameter("with --engine ray the rows go to --out as Parquet; --format json prints the counts")
    if per_frame and engine is Engine.ray:
        raise typer.BadParameter("--per-frame works with the local engine only")
    video = video_options(fps, max_seconds, per_frame)
    with user_errors():
        images = gather_inputs(paths, list_file)
        if engine is Engine.ray:
            summary = run_on_ray(images, out, address=address, actors=actors, model=model, aligned=aligned,
                                 video=video)
            if output is OutputFormat.json:
                print_json(summary.to_dict())
            console.print(summary_line(summary), markup=False, highlight=False)
            return
        # Load (and verify) the model once here: a bad model is one clear error, not one per worker.
        groups = AgeEstimator(model).load().groups
        targets = _annotation_targets([Path(i) for i in images], annotate) if annotate else [None] * len(images)
        if annotate:
            annotate.mkdir(parents=True, exist_ok=True)
            _print_renamed(images, targets)
        if aligned:
            tasks: list[Any] = [
                _Task(tuple(images[i : i + CHIPS_PER_TASK]), tuple(targets[i : i + CHIPS_PER_TASK]))
                for i in range(0, len(images), CHIPS_PER_TASK)
            ]
        else:
            tasks = [_Task((image,), (target,)) for image, target in zip(images, targets)]

        rows: list[dict] = []
        videos = 0 if aligned else count_videos(images)
        columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
        with Progress(*columns, console=console, transient=True, disable=len(images) < 2 and not videos) as progress, \
                video_progress(progress, videos > 0) as channel:
            bar = progress.add_task("predicting", total=len(images))
            for task, task_rows in zip(
                tasks,
                parallel_map(_run_task, tasks, workers=workers or default_workers(), initializer=_start_worker,
                             initargs=(model, aligned, video, channel)),
            ):
                rows.extend(task_rows)
                progress.advance(bar, len(task.images))
                finish(progress, task.images)

    if any("start_s" in row for row in rows):  # a video among the inputs: every row gets its columns
        rows = [row | {key: row.get(key) for key in VIDEO_COLUMNS} for row in rows]
    _print_rows(rows, output, groups.labels)
    if not _print_summary(rows, len(images), annotate):
        raise typer.Exit(2)


# ---------------------------------------------------------------------- workers


@dataclass(frozen=True)
class _Task:
    images: tuple[str, ...]  # paths or file:// URIs
    targets: tuple[Optional[Path], ...]  # where to write each annotated copy, if asked


_worker: dict[str, Any] = {}


def _start_worker(model: Optional[Path], aligned: bool, video: Any = None, channel: Any = None) -> None:
    from agedetect.inference import AgeEstimator

    # One thread each: parallelism comes from the processes, one per core.
    _worker["estimator"] = AgeEstimator(model, threads=1).load()
    _worker["aligned"] = aligned
    _worker["video"] = video
    set_progress_queue(channel)


def _run_task(task: _Task) -> list[dict]:
    """Rows for one task's images; every image gives at least one row, errors included."""
    from agedetect.batch import predict_files

    estimator = _worker["estimator"]
    rows: list[dict] = []
    results = predict_files(task.images, estimator, aligned=_worker["aligned"], video=_worker["video"],
                            on_progress=report_progress)
    for result, target in zip(results, task.targets):
        file_rows = result.rows(per_frame=bool(_worker["video"] and _worker["video"].per_frame))
        if target is not None and result.faces:
            problem = "no annotated copy of a video" if result.video else _annotate(estimator, result, target)
            for row in file_rows:
                row["error"] = problem
        rows.extend(file_rows)
    return rows


def _annotate(estimator: Any, result: Any, target: Path) -> Optional[str]:
    """Draw ``result``'s faces on a copy of its image; the problem, if it was not written.

    The image is loaded a second time here so that the shared batch function
    (agedetect.batch.predict_files) returns rows only, the same for every engine."""
    from agedetect.batch import local_path
    from agedetect.errors import AgeDetectError

    try:
        rgb = estimator.load_image(local_path(result.file))
    except AgeDetectError as error:  # changed on disk since it was predicted
        return f"annotated copy not written ({error})"
    return _save(draw_predictions(rgb, list(result.faces)), target)


def _save(picture: Any, target: Path) -> Optional[str]:
    try:
        picture.save(target)
        return None
    except (OSError, ValueError) as error:
        return f"annotated copy not written ({error})"


# ---------------------------------------------------------------------- rows


def _print_rows(rows: list[dict], output: OutputFormat, group_labels: tuple[str, ...]) -> None:
    if output is OutputFormat.json:
        print_json(rows)
    elif output is OutputFormat.csv:
        writer = csv.writer(sys.stdout, lineterminator="\n")
        extra = VIDEO_COLUMNS if rows and "start_s" in rows[0] else ()
        writer.writerow(csv_columns(group_labels) + extra)
        for row in rows:
            values = list(flat_row(row, group_labels).values()) + [row[key] for key in extra]
            writer.writerow(["" if v is None else v for v in values])
    else:
        from rich.table import Table

        video = bool(rows) and "start_s" in rows[0]
        table = Table("file", "face", "box", "age", "80% interval", "group", *(("seen (s)", "frames") if video else ()),
                      "error", show_edge=False)
        for row in rows:
            seen = ()
            if video:
                times = "" if row["start_s"] is None else f"{row['start_s']:.1f}-{row['end_s']:.1f}"
                seen = (times, "" if row["frames"] is None else str(row["frames"]))
            if row["error"] and row["age"] is None:
                table.add_row(plain(row["file"]), "", "", "", "", "", *("",) * len(seen), plain(row["error"], "red"))
                continue
            box = " ".join(f"{v:.0f}" for v in row["box"]) if row["box"] else ""
            low, high = row["age_interval"]
            table.add_row(plain(row["file"]), str(row["face"]), box, str(row["age_years"]), f"{low:.0f}-{high:.0f}",
                          plain(row["age_group"]), *seen, plain(row["error"] or ""))
        results().print(table)


def _print_summary(rows: list[dict], images: int, annotate: Optional[Path]) -> bool:
    """The counts on stderr; whether any input could be read."""
    failed = {row["file"] for row in rows if row["age"] is None}
    unreadable = {row["file"] for row in rows if row["age"] is None and row["error"] != NO_FACE_MESSAGE}
    faces = sum(1 for row in rows if row["age"] is not None)
    line = (f"{images} image{'s' * (images != 1)}: {images - len(failed)} with faces ({faces} "
            f"face{'s' * (faces != 1)}), {len(failed) - len(unreadable)} without a face, {len(unreadable)} "
            "could not be read")
    if annotate:
        line += f"; annotated copies in {annotate}"
    console.print(line, markup=False, highlight=False)
    if images and len(unreadable) == images:
        console.print("error: no input could be read", style="bold red", markup=False, highlight=False)
        return False
    return True


def _print_renamed(images: list[str], targets: list[Optional[Path]]) -> None:
    """Say which annotated copy belongs to which input where names collided."""
    for image, target in zip(images, targets):
        if target is not None and target.name != f"{Path(image).stem}{target.suffix}":
            console.print(f"annotated copy of {image} -> {target}", markup=False, highlight=False)


# ---------------------------------------------------------------------- annotation


def _annotation_targets(images: list[Path], folder: Path) -> list[Path]:
    """One output path per image in ``folder``: the image's own name, made unique, and
    never the input itself."""
    taken: set[str] = set()
    targets = []
    for image in images:
        stem, suffix = image.stem, image.suffix.lower()
        if suffix not in (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff"):
            suffix = ".png"
        name, n = f"{stem}{suffix}", 1
        while name in taken or (folder / name).resolve() == image.resolve():
            n += 1
            name = f"{stem}-{n}{suffix}"
        taken.add(name)
        targets.append(folder / name)
    return targets


#: Each face's colour, by its number (face 1 the first): the page's palette (web/static/app.js).
FACE_COLORS = ("#e4572e", "#17bebb", "#ffc914", "#76b041", "#a86ad8", "#2e86de")


def draw_predictions(rgb: Any, predictions: list) -> Any:
    """A copy of ``rgb`` (an RGB array) with each face's box, number and age drawn in the
    face's own colour, as the page draws them: a PIL image.

    Drawn after predicting, on a copy, so the model never sees the drawing.
    """
    from PIL import Image, ImageColor, ImageDraw, ImageFont

    picture = Image.fromarray(rgb).copy()
    draw = ImageDraw.Draw(picture)
    unit = max(picture.size) / 100
    for number, prediction in enumerate(predictions, start=1):
        colour = ImageColor.getrgb(FACE_COLORS[(number - 1) % len(FACE_COLORS)])
        x1, y1, x2, y2 = prediction.box
        low, high = prediction.age_interval
        draw.rectangle((x1, y1, x2, y2), outline=colour, width=max(2, round(unit * 0.4)))
        size = max(12, round(min(unit * 3, (x2 - x1) * 0.3)))
        font = ImageFont.load_default(size=size)
        label = f"{number}: {prediction.age_years} ({low:.0f}-{high:.0f})"
        width = draw.textlength(label, font=font)
        left = max(0.0, min(x1, picture.width - width))  # inside the picture, for a face at its edge
        top = max(0, y1 - size * 1.3)
        draw.text((left, top), label, fill=(255, 255, 255), font=font, stroke_width=max(1, size // 8),
                  stroke_fill=colour)
    return picture
