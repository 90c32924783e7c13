"""What is in a prepared dataset: plots and a short text summary.

:func:`write_report` reads a folder written by :func:`agedetect.data.prepare` and writes
``age_histogram.png``, ``age_groups_by_split.png``, ``gender_race.png`` and
``report.txt``. Matplotlib (the ``report`` extra) is imported only here, and only when
a report is made; figures are drawn on the Agg canvas without pyplot, so nothing global
changes in the caller's process.
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from agedetect.data import SPLITS, load_manifest, load_record, load_settings
from agedetect.errors import DataError
from agedetect.labels import GENDERS, RACES

SPLIT_COLOURS = {"train": "#4C72B0", "val": "#DD8452", "test": "#55A868"}
GROUP_COLOURS = ("#4C72B0", "#DD8452", "#55A868", "#C44E52", "#8172B3", "#937860", "#DA8BC3", "#8C8C8C")


@dataclass(frozen=True)
class Report:
    """The files :func:`write_report` wrote and the summary it printed into ``report.txt``."""

    out: Path
    plots: tuple[Path, ...]
    text: str
    summary: dict[str, Any]


def write_report(root: str | os.PathLike, out: str | os.PathLike | None = None) -> Report:
    """Plot and summarise the prepared dataset in ``root``; files go to ``out`` (``root/report``).

    Raises:
        DataError: ``root`` holds no prepared dataset, or it has no accepted faces.
    """
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise DataError("data report needs matplotlib: pip install 'agedetect[report]'") from None
    root = Path(root)
    rows = load_manifest(root)
    if not rows:
        raise DataError(f"{root}: the manifest has no accepted faces to report on")
    record = load_record(root)
    groups = load_settings(root).groups
    out = Path(out) if out is not None else root / "report"
    out.mkdir(parents=True, exist_ok=True)

    ages = np.array([row.age for row in rows])
    split_of = np.array([row.split for row in rows])
    summary = _summary(rows, ages, split_of, groups.labels, record)
    plots = (
        _age_histogram(ages, groups, out / "age_histogram.png"),
        _groups_by_split(summary, groups.labels, out / "age_groups_by_split.png"),
        _gender_race(rows, split_of, out / "gender_race.png"),
    )
    if len(summary["datasets"]) > 1:
        plots += (_ages_by_dataset(rows, out / "age_by_dataset.png"),)
    text = _text(root, summary, groups.labels, plots)
    (out / "report.txt").write_text(text, encoding="utf-8")
    return Report(out=out, plots=plots, text=text, summary=summary)


def _summary(rows, ages, split_of, labels, record) -> dict[str, Any]:
    counts = record.get("counts", {})
    group_of = np.array([row.age_group for row in rows])
    return {
        "seen": counts.get("seen"),
        "accepted": len(rows),
        "rejected": counts.get("rejected"),
        "reasons": counts.get("reasons", {}),
        "splits": {name: int((split_of == name).sum()) for name in SPLITS},
        "group_counts": {
            name: {label: int(((split_of == name) & (group_of == label)).sum()) for label in labels}
            for name in SPLITS
        },
        "age": {
            "min": int(ages.min()),
            "median": float(np.median(ages)),
            "mean": round(float(ages.mean()), 1),
            "max": int(ages.max()),
        },
        "datasets": dict(sorted(Counter(row.dataset for row in rows).items())),
        "gender": _named_counts((r.gender for r in rows), GENDERS),
        "race": _named_counts((r.race for r in rows if r.dataset == "utkface"), RACES),
        "malformed_names": record.get("malformed_names", []),
    }


def _named_counts(values, names: dict) -> dict[str, int]:
    """Counts under the label's name, ``unknown`` last for faces whose dataset has no such label."""
    counts = Counter(values)
    named = {names[key]: counts[key] for key in sorted(names) if counts[key]}
    if counts[None]:
        named["unknown"] = counts[None]
    return named


def _ages_by_dataset(rows, path: Path) -> Path:
    """Each dataset's share of faces at each age: where one dataset fills another's gaps."""
    figure = _figure(10, 4.2)
    axes = figure.add_subplot()
    datasets = sorted({row.dataset for row in rows})
    for index, dataset in enumerate(datasets):
        ages = np.array([row.age for row in rows if row.dataset == dataset])
        counts = np.bincount(np.minimum(ages, 100), minlength=101)
        axes.step(np.arange(101), 100 * counts / counts.sum(), where="mid", linewidth=1.4,
                  color=GROUP_COLOURS[index % len(GROUP_COLOURS)], label=f"{dataset} ({len(ages):,} faces)")
    axes.set_xlabel("Age (years; 100 = 100 or older)")
    axes.set_ylabel("% of the dataset's faces")
    axes.set_title("Age distribution of each dataset", loc="left")
    axes.legend(frameon=False)
    _style(axes)
    figure.savefig(path)
    return path


def _figure(width: float, height: float):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), dpi=110, layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def _style(axes) -> None:
    axes.spines[["top", "right"]].set_visible(False)
    axes.grid(axis="y", alpha=0.3)
    axes.set_axisbelow(True)


def _age_histogram(ages: np.ndarray, groups, path: Path) -> Path:
    figure = _figure(10, 4.8)
    axes = figure.add_subplot()
    top = int(max(ages.max(), groups.edges[-1] + 1 if groups.edges else 1))
    counts = np.bincount(ages, minlength=top + 1)
    group_index = groups.index_of(np.arange(top + 1))
    colours = [GROUP_COLOURS[i % len(GROUP_COLOURS)] for i in group_index]
    axes.bar(np.arange(top + 1), counts, width=1.0, color=colours, edgecolor="white", linewidth=0.3)
    for edge in groups.edges:
        axes.axvline(edge - 0.5, color="0.35", linestyle="--", linewidth=0.8)
    peak = counts.max()
    bounds = (0, *groups.edges, top + 1)
    for index, label in enumerate(groups.labels):
        share = counts[bounds[index] : bounds[index + 1]].sum() / counts.sum()
        middle = (bounds[index] + min(bounds[index + 1], 90)) / 2 - 0.5
        axes.text(
            middle,
            peak * 1.07,
            f"{label}\n{share:.0%}",
            ha="center",
            va="bottom",
            fontsize=9,
            color=GROUP_COLOURS[index % len(GROUP_COLOURS)],
            fontweight="bold",
        )
    for age in _peaks(counts):
        axes.annotate(
            f"age {age}: {counts[age]:,}",
            (age, counts[age]),
            xytext=(8, -4),
            textcoords="offset points",
            fontsize=9,
            color="0.2",
        )
    axes.set_xlim(-1, top + 1)
    axes.set_ylim(0, peak * 1.25)
    axes.set_xlabel("Age (years)")
    axes.set_ylabel("Faces")
    axes.set_title(f"Age distribution of {len(ages):,} faces, coloured by age group", loc="left")
    _style(axes)
    figure.savefig(path)
    return path


def _peaks(counts: np.ndarray, apart: int = 10) -> list[int]:
    """The tallest age and the tallest one at least ``apart`` years from it."""
    first = int(counts.argmax())
    far = [age for age in range(len(counts)) if abs(age - first) >= apart]
    second = max(far, key=lambda age: counts[age]) if far else None
    return [first] + ([second] if second is not None and counts[second] > 0 else [])


def _groups_by_split(summary: dict, labels: tuple[str, ...], path: Path) -> Path:
    figure = _figure(11, 4.6)
    count_axes, share_axes = figure.subplots(1, 2)
    x = np.arange(len(labels))
    width = 0.8 / len(SPLITS)
    for offset, name in enumerate(SPLITS):
        counts = np.array([summary["group_counts"][name][label] for label in labels])
        total = max(counts.sum(), 1)
        position = x + (offset - (len(SPLITS) - 1) / 2) * width
        bars = count_axes.bar(
            position, counts, width, label=f"{name} ({counts.sum():,})", color=SPLIT_COLOURS[name]
        )
        count_axes.bar_label(bars, labels=[f"{c:,}" for c in counts], fontsize=7, padding=2)
        share_axes.bar(position, 100 * counts / total, width, label=name, color=SPLIT_COLOURS[name])
    for axes, title, ylabel in (
        (count_axes, "Faces per age group and split", "Faces"),
        (share_axes, "Share of each split (stratified: bars match)", "% of the split"),
    ):
        axes.set_xticks(x, labels)
        axes.set_xlabel("Age group (years)")
        axes.set_ylabel(ylabel)
        axes.set_title(title, loc="left")
        _style(axes)
    count_axes.legend(frameon=False)
    count_axes.margins(y=0.12)
    figure.savefig(path)
    return path


def _gender_race(rows, split_of: np.ndarray, path: Path) -> Path:
    figure = _figure(11, 4.4)
    gender_axes, race_axes = figure.subplots(1, 2, width_ratios=(2, 5))
    for axes, field, names, title in (
        (gender_axes, "gender", GENDERS, "By gender label"),
        (race_axes, "race", RACES, "By race label (audit use only; never predicted)"),
    ):
        values = np.array([-1 if getattr(row, field) is None else getattr(row, field) for row in rows])
        keys = sorted(names)
        if (values == -1).any():
            names, keys = {**names, -1: "unknown"}, keys + [-1]
        bottom = np.zeros(len(keys))
        for name in SPLITS:
            counts = np.array([((values == key) & (split_of == name)).sum() for key in keys])
            axes.bar(
                [names[key] for key in keys], counts, bottom=bottom, label=name, color=SPLIT_COLOURS[name]
            )
            bottom += counts
        for position, total in enumerate(bottom):
            axes.text(
                position,
                total,
                f"{int(total):,}\n{total / len(rows):.0%}",
                ha="center",
                va="bottom",
                fontsize=8,
            )
        axes.set_ylabel("Faces")
        axes.set_title(title, loc="left")
        axes.margins(y=0.15)
        _style(axes)
    race_axes.legend(frameon=False, title="split")
    figure.savefig(path)
    return path


def _text(root: Path, summary: dict, labels: tuple[str, ...], plots: tuple[Path, ...]) -> str:
    accepted = summary["accepted"]
    lines = [f"Prepared dataset: {root.resolve()}"]
    if summary["seen"] is not None:
        lines.append(
            f"Files seen {summary['seen']:,}: accepted {accepted:,}, rejected {summary['rejected']:,}"
        )
    for reason, count in summary["reasons"].items():
        lines.append(f"  rejected {reason}: {count:,}")
    for item in summary["malformed_names"]:
        lines.append(f"  name {item['name']!r}: {item['status']} ({item['detail']})")
    lines.append(
        "Splits: " + ", ".join(f"{n} {c:,} ({c / accepted:.1%})" for n, c in summary["splits"].items())
    )
    if len(summary["datasets"]) > 1:
        lines.append("Datasets: " + ", ".join(f"{name} {count:,}" for name, count in summary["datasets"].items()))
    age = summary["age"]
    lines.append(f"Age: {age['min']}-{age['max']}, median {age['median']:g}, mean {age['mean']:g}")
    lines.append("Age groups, share of each split:")
    lines.append("  " + f"{'group':<8}" + "".join(f"{name:>14}" for name in (*SPLITS, "all")))
    for label in labels:
        cells = []
        for name in SPLITS:
            count = summary["group_counts"][name][label]
            cells.append(f"{count:>6,} {count / max(summary['splits'][name], 1):>6.1%}")
        total = sum(summary["group_counts"][name][label] for name in SPLITS)
        cells.append(f"{total:>6,} {total / accepted:>6.1%}")
        lines.append("  " + f"{label:<8}" + "".join(f"{cell:>14}" for cell in cells))
    lines.append(
        "Gender: " + ", ".join(f"{k} {v:,} ({v / accepted:.0%})" for k, v in summary["gender"].items())
    )
    lines.append(
        "Race label (UTKFace only; audit only): "
        + ", ".join(f"{k} {v:,} ({v / accepted:.0%})" for k, v in summary["race"].items())
    )
    lines.append("Plots: " + ", ".join(str(path) for path in plots))
    return "\n".join(lines) + "\n"
