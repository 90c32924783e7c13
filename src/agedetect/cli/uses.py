"""``agedetect screen``, ``gap`` and ``audience``: the uses of an age estimate (agedetect.uses)."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import List, Optional

import typer

from agedetect.cli import app
from agedetect.cli.common import EXIT_REFER, console, plain, print_json, results, user_errors
from agedetect.cli.engines import (
    ACTORS_HELP, ADDRESS_HELP, ENGINE_HELP, LIST_HELP, Engine, check_options, gather_inputs, run_on_ray, summary_line,
)
from agedetect.cli.videos import FPS_HELP, MAX_SECONDS_HELP, count_videos, finish, video_options, video_progress
from agedetect.uses import DEFAULT_MAX_MINOR_RISK
from agedetect.video import DEFAULT_FPS, DEFAULT_MAX_SECONDS


class Basis(str, Enum):
    estimate = "estimate"
    interval_low = "interval_low"


class Context(str, Enum):
    self = "self"
    profile = "profile"


def _estimator(model: Optional[Path]):
    from agedetect.inference import AgeEstimator

    return AgeEstimator(model)


@app.command("screen")
def screen_command(
    photo: Path = typer.Argument(..., help="A photo of the customer."),
    min_age: int = typer.Option(18, "--min-age", min=0, max=100, help="The legal age."),
    buffer: int = typer.Option(
        7, "--buffer", min=0, max=100, help="Years above --min-age a face must look to pass (18 + 7: Challenge 25)."
    ),
    basis: Basis = typer.Option(
        Basis.estimate, "--basis",
        help="Decide on the estimated age, or (stricter) on the low end of its 80% range.",
    ),
    max_risk: float = typer.Option(
        DEFAULT_MAX_MINOR_RISK, "--max-risk", min=0.0, max=1.0,
        help="Also refer a face the model gives more than this probability of being under --min-age (1: no cap).",
    ),
    model: Optional[Path] = typer.Option(None, "--model", help="An exported .onnx (default: the shipped model)."),
    json_out: bool = typer.Option(False, "--json", help="Print one JSON object on stdout."),
) -> None:
    """Age check: pass if every face looks MIN_AGE + BUFFER or over, else refer to a person to check ID.

    Exit code 0: every face passes; 3: referred (a face did not pass, or no face was
    found); 2: the photo or an option could not be used."""
    from agedetect.uses import ScreeningPolicy, screen

    with user_errors():
        try:
            policy = ScreeningPolicy(min_age, buffer, basis.value, None if max_risk >= 1.0 else max_risk)
        except ValueError as error:
            raise typer.BadParameter(str(error)) from None
        result = screen(photo, policy, estimator=_estimator(model))
    if json_out:
        print_json({"file": str(photo)} | result.to_dict())
    else:
        from rich.table import Table

        out = results()
        if result.faces:
            table = Table("face", "box", "age", "80% range", "decision", "reason")
            for face in result.faces:
                colour = "green" if face.decision == "pass" else "yellow"
                table.add_row(
                    str(face.face), " ".join(f"{v:.0f}" for v in face.box), str(face.age_years),
                    f"{face.age_interval[0]:.0f}-{face.age_interval[1]:.0f}", plain(face.decision.upper(), colour),
                    plain(face.reason),
                )
            out.print(table)
        out.print(plain(result.decision.upper(), "bold " + ("green" if result.passed else "yellow")),
                  plain(result.message))
    if not result.passed:
        raise typer.Exit(EXIT_REFER)


@app.command("gap")
def gap_command(
    photo: Path = typer.Argument(..., help="A photo of the person."),
    age: int = typer.Option(..., "--age", min=0, max=120, help="The stated age, in whole years."),
    face: Optional[int] = typer.Option(
        None, "--face", min=1, help="Which face to compare: 1 is the largest (the default), 2 the next, ..."),
    context: Context = typer.Option(
        Context.self, "--context",
        help="self: how old do I look; profile: is this profile photo consistent with the stated age?",
    ),
    model: Optional[Path] = typer.Option(None, "--model", help="An exported .onnx (default: the shipped model)."),
    json_out: bool = typer.Option(False, "--json", help="Print one JSON object on stdout."),
) -> None:
    """Compare the estimated age with a stated one: unusual when beyond the model's usual error.

    The threshold is the 90th-percentile error of the shipped model for people of the stated
    age (its sidecar's typical_error). Not a health measure."""
    from agedetect.uses import age_gap

    with user_errors():
        gap = age_gap(photo, age, context=context.value, estimator=_estimator(model), face=face)
    if json_out:
        print_json({"file": str(photo)} | gap.to_dict())
        return
    which = f"face {gap.face} of {gap.faces}" + (" (the largest)" if gap.face == 1 else "") if gap.faces > 1 else "the face"
    out = results()
    out.print(
        f"{which}: estimated age {gap.estimated_years} (80% range {gap.age_interval[0]:.0f}-"
        f"{gap.age_interval[1]:.0f}), stated {gap.stated_age}: gap {gap.gap:+.1f} years; "
        f"the model's typical error at {gap.band} is {gap.typical_error:.1f} years",
        markup=False,
    )
    out.print(plain(gap.message, "yellow" if gap.unusual else "green"))
    if gap.faces > 1 and face is None:
        console.print(f"{gap.faces} faces found; --face N compares another (1 is the largest).",
                      style="dim", markup=False, highlight=False)


@app.command("audience")
def audience_command(
    paths: Optional[List[str]] = typer.Argument(None, metavar="PATH...", help="Photos, folders (recursive) and globs."),
    out: Path = typer.Option(
        ..., "--out", "-o",
        help="Folder for faces.csv, failures.csv, groups.png, index.html (--engine ray: faces/, failures/, summary.json).",
    ),
    workers: Optional[int] = typer.Option(None, "--workers", min=1, help="Processes (default: one per CPU)."),
    model: Optional[Path] = typer.Option(None, "--model", help="An exported .onnx (default: the shipped model)."),
    json_out: bool = typer.Option(False, "--json", help="Print the counts as one JSON object on stdout."),
    list_file: Optional[Path] = typer.Option(None, "--list", help=LIST_HELP),
    engine: Engine = typer.Option(Engine.local, "--engine", help=ENGINE_HELP),
    address: Optional[str] = typer.Option(None, "--address", help=ADDRESS_HELP),
    actors: Optional[int] = typer.Option(None, "--actors", min=1, help=ACTORS_HELP),
    fps: float = typer.Option(DEFAULT_FPS, "--fps", help=FPS_HELP),
    max_seconds: float = typer.Option(DEFAULT_MAX_SECONDS, "--max-seconds", help=MAX_SECONDS_HELP),
) -> None:
    """Count faces per age group over many photos; write a CSV per face, a chart and a page.

    A video counts people, not frames: each person once, their age fused over their
    frames; the page adds people on screen over time."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from agedetect.files import default_workers
    from agedetect.inference import AgeEstimator
    from agedetect.uses import Audience, can_plot, iter_audience, write_audience_report

    check_options(engine, address=address, actors=actors, out=out, workers=workers, out_is_ray_only=False)
    video = video_options(fps, max_seconds)
    with user_errors():
        if engine is Engine.ray:
            # Parquet per face and per failure, and the counts: the chart and the page would
            # need every face on this machine, which a cluster-sized run avoids.
            run = run_on_ray(gather_inputs(paths, list_file), out, address=address, actors=actors, model=model,
                             video=video)
            if json_out:
                print_json(run.audience_dict() | {"out": str(out)})
                return
            _print_audience(run.audience_dict(), "failures/ (Parquet)")
            console.print(summary_line(run), markup=False, highlight=False)
            return
        chart = can_plot()
        groups = AgeEstimator(model).groups  # loads (and verifies) the model once, before the work
        images = gather_inputs(paths, list_file)
        audience = Audience(groups)
        timelines = {}
        videos = count_videos(images)
        columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
        with Progress(*columns, console=console, transient=True, disable=len(images) < 2 and not videos) as bar, \
                video_progress(bar, videos > 0) as channel:
            task = bar.add_task("audience", total=len(images))
            for path, result, timeline in iter_audience(images, model=model, workers=workers or default_workers(),
                                                        video=video, progress=channel):
                audience.add(path, result)
                if timeline is not None:
                    timelines[path] = timeline
                bar.advance(task)
                finish(bar, [path])
        page = write_audience_report(audience, out, chart=chart, timelines=timelines)
    summary = audience.to_dict()
    if not chart:
        console.print("no chart drawn (groups.png): it needs matplotlib: pip install 'agedetect[report]'",
                      style="yellow", markup=False, highlight=False)
    if json_out:
        print_json(summary | {"report": str(page)})
        return
    _print_audience(summary, "failures.csv")
    console.print(f"report: {page}", markup=False, highlight=False)


def _print_audience(summary: dict, failures: str) -> None:
    """The counts on stdout; where the inputs without faces are listed, on stderr."""
    from rich.table import Table

    title = f"{summary['faces']} faces in {summary['with_faces']} of {summary['images']} images"
    table = Table("age group", "faces", "estimated share", title=title)
    for group, count in summary["groups"].items():
        share = (summary["shares"] or {}).get(group)
        table.add_row(plain(group), str(count), "-" if share is None else f"{share:.1%}")
    results().print(table)
    parts = []
    if summary["no_face_images"]:
        parts.append(f"{summary['no_face_images']} with no face")
    if summary["failed"]:
        reasons = ", ".join(f"{r}: {n}" for r, n in summary["failed_reasons"].items())
        parts.append(f"{summary['failed']} could not be read ({reasons})")
    if parts:
        console.print(f"{' and '.join(parts)}; see {failures}", style="yellow", markup=False, highlight=False)
