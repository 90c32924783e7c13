"""``agedetect data ...``: prepare and report on datasets."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from agedetect.cli import app
from agedetect.cli.common import console, print_json, user_errors

data_app = typer.Typer(help="Prepare face datasets and report what is in them.", no_args_is_help=True)
app.add_typer(data_app, name="data")


@data_app.command()
def prepare(
    sources: List[Path] = typer.Argument(
        ..., metavar="SRC", help="Folders and archives (.zip, .tar, .tar.gz, .tgz) of UTKFace files."
    ),
    out: Path = typer.Option(
        ..., "--out", "-o", help="Output folder for chips/, manifest.csv, rejected.csv, prepare.json."
    ),
    seed: int = typer.Option(0, help="Seed of the train/val/test split."),
    split: str = typer.Option("0.7,0.15,0.15", help="Train,val,test fractions; they must sum to 1."),
    groups: Optional[str] = typer.Option(
        None, help="Age group edges, e.g. 21,27,36,51 (the default) for 0-20,21-26,27-35,36-50,51+."
    ),
    balanced_groups: Optional[int] = typer.Option(
        None,
        "--balanced-groups",
        help="Instead of --groups: K groups with equal shares of the training ages.",
    ),
    workers: Optional[int] = typer.Option(
        None, min=1, help="Processes examining files (default: one per CPU)."
    ),
    json_output: bool = typer.Option(
        False, "--json", help="Print one JSON object with the counts on stdout."
    ),
) -> None:
    """Check, chip, label and split UTKFace files; every file ends in manifest.csv or rejected.csv."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    from agedetect.data import PrepareSettings
    from agedetect.data import prepare as run_prepare
    from agedetect.labels import AgeGroups

    if groups is not None and balanced_groups is not None:
        raise typer.BadParameter("give --groups or --balanced-groups, not both", param_hint="--groups")
    try:
        settings = PrepareSettings(
            seed=seed,
            split=split,  # checked and parsed by PrepareSettings
            groups=AgeGroups.parse(groups) if groups is not None else AgeGroups.default(),
            balanced_groups=balanced_groups,
        )
    except ValueError as error:
        raise typer.BadParameter(str(error)) from None

    with user_errors():
        progress = Progress(
            TextColumn("[bold]preparing"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=console,
            transient=json_output,
        )
        task = progress.add_task("files", total=None)

        def on_progress(done: int, total: int) -> None:
            if not progress.live.is_started:  # shown once the files are found, not on a bad SRC
                progress.start()
            progress.update(task, completed=done, total=total)

        try:
            result = run_prepare(sources, out, settings, workers=workers, on_progress=on_progress)
        finally:
            if progress.live.is_started:
                progress.stop()
    if json_output:
        print_json(result.to_dict())
        return
    from rich.console import Console

    show = Console(soft_wrap=True)
    show.print(
        f"[bold]{result.seen:,}[/] files seen: [green]{result.accepted:,} accepted[/], "
        f"[red]{result.rejected:,} rejected[/] in {result.seconds:.1f} s"
    )
    for reason, count in result.reasons.items():
        show.print(f"  rejected {reason}: {count:,}")
    for item in result.malformed_names:
        show.print(f"  name {item['name']!r}: {item['status']} ({item['detail']})", highlight=False)
    show.print("splits: " + ", ".join(f"{name} {count:,}" for name, count in result.splits.items()))
    show.print("age groups: " + ", ".join(result.groups.labels))
    show.print(f"wrote {result.out}/manifest.csv, rejected.csv, prepare.json and chips/", highlight=False)


@data_app.command()
def report(
    root: Path = typer.Argument(..., help="A folder written by `agedetect data prepare`."),
    out: Optional[Path] = typer.Option(
        None, "--out", "-o", help="Where the plots go (default: ROOT/report)."
    ),
    json_output: bool = typer.Option(False, "--json", help="Print the summary as one JSON object on stdout."),
) -> None:
    """Plot the ages, age groups per split, gender and race labels; write a text summary."""
    from agedetect.report import write_report

    with user_errors():
        result = write_report(root, out)
    if json_output:
        print_json({"out": str(result.out), "plots": [str(p) for p in result.plots], **result.summary})
        return
    typer.echo(result.text, nl=False)
