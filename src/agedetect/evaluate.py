"""Evaluation: score a model on labelled faces and audit its error by band, gender, group.

Inputs are a folder of UTKFace-named images (aligned chips are used as they are; whole
photos go through detection and alignment), a prepared dataset split, or any CSV with
``path,age`` columns (optional ``gender``, ``race``). Every input is counted: scored or
failed, with the reason.
"""

from __future__ import annotations

import csv
import html
import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Sequence

import numpy as np

from agedetect.ages import decode_ages, reported_age
from agedetect.errors import AgeDetectError, DataError, NoFaceError, UnreadableImageError
from agedetect.labels import GENDERS, RACES, AgeGroups, LabelError, parse_utkface_name

#: Age bands for the error audit (the issue's; finer where decisions are made: 13-17, 18-24).
AGE_BANDS: tuple[tuple[int, int], ...] = ((0, 12), (13, 17), (18, 24), (25, 35), (36, 50), (51, 70), (71, 200))


def band_label(lo: int, hi: int) -> str:
    return f"{lo}+" if hi >= 200 else f"{lo}-{hi}"


@dataclass
class Sample:
    """One labelled input: where it is and what it is."""

    path: Path
    age: int | None = None
    gender: int | None = None
    race: int | None = None
    aligned: bool = False  # an aligned UTKFace-framed chip: no detection needed
    error: str | None = None  # a reason it cannot be scored (bad label, ...)
    dataset: str | None = None  # a prepared folder's dataset column; figures are also given per dataset


@dataclass
class Scored:
    """What evaluation produced: per-face arrays and the failures."""

    samples: list[Sample] = field(default_factory=list)
    probabilities: np.ndarray | None = None
    failed: Counter = field(default_factory=Counter)
    failures: list[tuple[str, str]] = field(default_factory=list)  # (path, reason)
    failed_datasets: list[str | None] = field(default_factory=list)  # the dataset of each failure


# --------------------------------------------------------------------------- inputs


#: The failure reason of an image whose name carries no UTKFace label at all.
UNLABELLED = "unlabelled"


def samples_from_folder(folder: Path) -> list[Sample]:
    """UTKFace-named images under ``folder`` (recursive); bad names become failures: an
    image whose name is not a UTKFace name at all (no ``AGE_`` in front) is ``unlabelled``,
    one that starts like a UTKFace name but breaks off keeps the parser's reason."""
    from agedetect.files import find_images

    samples = []
    for path in find_images([folder]):
        try:
            label = parse_utkface_name(path.name)
        except LabelError as error:
            unlabelled = error.reason == "malformed_name" and not path.name.split("_")[0].isdigit()
            samples.append(Sample(path, error=UNLABELLED if unlabelled else error.reason))
            continue
        samples.append(Sample(path, label.age, label.gender, label.race, aligned=label.is_chip))
    return samples


def samples_from_prepared(folder: Path, split: str, datasets: Iterable[str] | None = None) -> list[Sample]:
    """The chips of one split of a prepared folder, optionally of some datasets only."""
    from agedetect.data import load_manifest

    rows = load_manifest(folder, split=split, datasets=datasets)
    return [Sample(row.path, row.age, row.gender, row.race, aligned=True, dataset=row.dataset) for row in rows]


def samples_from_csv(csv_path: Path, aligned: bool = False) -> list[Sample]:
    """Rows of a ``path,age[,gender[,race]]`` CSV (paths relative to the CSV's folder),
    read by :func:`agedetect.datasets.read_labels_csv`: a row it cannot label is a
    failure with its reason, never dropped."""
    from agedetect.datasets import read_labels_csv

    samples = []
    for row in read_labels_csv(csv_path, aligned=aligned):
        label = row.label
        if label is None:
            samples.append(Sample(row.path, error=row.reason))
        else:
            samples.append(Sample(row.path, label.age, label.gender, label.race, aligned))
    return samples


# --------------------------------------------------------------------------- scoring


def score_samples(samples: list[Sample], estimator, progress: Callable[[int], None] | None = None) -> Scored:
    """Run ``estimator`` (an :class:`agedetect.AgeEstimator`) over every sample.

    Aligned chips go to the model in batches; whole photos are detected and aligned, and
    the face scored is the one the label most likely belongs to (the most prominent).
    """
    from agedetect.images import load_image

    result = Scored()
    kept: list[Sample] = []
    probs: list[np.ndarray] = []
    chips: list[np.ndarray] = []
    chip_samples: list[Sample] = []

    def flush() -> None:
        if chips:
            probs.append(estimator.chip_probabilities(np.stack(chips)))
            kept.extend(chip_samples)
            chips.clear()
            chip_samples.clear()

    for sample in samples:
        try:
            if sample.error:
                raise DataError(sample.error)
            if sample.aligned:
                chips.append(estimator.load_chip(sample.path))
                chip_samples.append(sample)
                if len(chips) >= 256:
                    flush()
            else:
                image = load_image(sample.path)
                probs.append(estimator.main_face_probabilities(image)[None, :])
                kept.append(sample)
        except NoFaceError:
            _fail(result, sample, "no_face_found")
        except UnreadableImageError:
            _fail(result, sample, "unreadable_image")
        except DataError as error:
            _fail(result, sample, sample.error or str(error))
        except AgeDetectError as error:
            _fail(result, sample, type(error).__name__)
        if progress:
            progress(1)
    flush()
    result.samples = kept
    result.probabilities = np.concatenate(probs) if probs else np.zeros((0, 101))
    return result


def _fail(result: Scored, sample: Sample, reason: str) -> None:
    result.failed[reason] += 1
    result.failures.append((str(sample.path), reason))
    result.failed_datasets.append(sample.dataset)


# --------------------------------------------------------------------------- metrics


def compute_metrics(
    ages: np.ndarray,
    probabilities: np.ndarray,
    groups: AgeGroups,
    genders: Iterable[int | None] | None = None,
    races: Iterable[int | None] | None = None,
    failed: dict[str, int] | None = None,
) -> dict:
    """Every figure `agedetect evaluate` reports, from true ages and predicted distributions.

    >>> p = np.zeros((2, 101)); p[0, 20] = 1; p[1, 40] = 1
    >>> m = compute_metrics(np.array([22, 50]), p, AgeGroups.default())
    >>> m["mae"], m["cs5"], m["group_accuracy"]
    (6.0, 0.5, 0.5)
    """
    from sklearn.metrics import confusion_matrix

    ages = np.asarray(ages, dtype=np.float64)
    decoded = decode_ages(probabilities, groups)
    outcomes = face_outcomes(ages, decoded, groups)
    signed = decoded.age - ages
    true_group = groups.index_of(ages)
    n = len(ages)
    failed = dict(failed or {})
    metrics: dict = {
        "n": n,
        **{name: round(float(values.mean()), 4) if n else None for name, values in outcomes.items()},
        # MAE's sampling error on these faces (its standard error), for the model card's margins.
        "mae_standard_error": round(float(outcomes["mae"].std(ddof=1) / np.sqrt(n)), 4) if n > 1 else None,
        "mean_interval_width": round(float((decoded.high - decoded.low).mean()), 2) if n else None,
        "failed": sum(failed.values()),
        "failed_reasons": failed,
        "groups": list(groups.labels),
        # sklearn refuses an empty input; with nothing scored every cell is 0 (the failures still count).
        "confusion_matrix": confusion_matrix(true_group, decoded.group_index, labels=range(len(groups))).tolist()
        if n else [[0] * len(groups) for _ in groups.labels],
        "bias": round(float(signed.mean()), 4) if n else None,
        "mae_by_age_band": _mae_by(signed, [_band_of(a) for a in ages], [band_label(*b) for b in AGE_BANDS]),
    }
    if genders is not None:
        metrics["mae_by_gender"] = _mae_by(signed, [GENDERS.get(g, "unknown") if g is not None else "unknown" for g in genders], list(GENDERS.values()))
    if races is not None and any(r is not None for r in races):
        metrics["mae_by_race_label"] = _mae_by(signed, [RACES.get(r, "unknown") if r is not None else "unknown" for r in races], list(RACES.values()))
    return metrics


def face_outcomes(ages: np.ndarray, decoded, groups: AgeGroups) -> dict[str, np.ndarray]:
    """One value per face behind each headline figure, whose mean is the figure: ``mae``
    (absolute error), ``cs5`` (error at most 5 years), ``group_accuracy`` (right group),
    ``interval_coverage`` (true age inside the 80% interval). ``decoded`` is
    :func:`agedetect.ages.decode_ages`' answer for the faces."""
    ages = np.asarray(ages, dtype=np.float64)
    errors = np.abs(decoded.age - ages)
    return {
        "mae": errors,
        "cs5": errors <= 5,
        "group_accuracy": decoded.group_index == groups.index_of(ages),
        "interval_coverage": (ages >= decoded.low) & (ages <= decoded.high),
    }


#: Temperature factors tried when widening a model's interval to a coverage target.
WIDENING_SCALES = tuple(np.round(np.arange(1.0, 3.001, 0.05), 2))


def coverage_by_dataset(ages: np.ndarray, decoded, datasets: np.ndarray, groups) -> dict[str, float]:
    """Each dataset's share of faces whose true age lies in the decoded 80% interval."""
    inside = face_outcomes(ages, decoded, groups)["interval_coverage"]
    return {name: round(float(inside[datasets == name].mean()), 4) for name in sorted(set(datasets))}


def smallest_covering_scale(
    scales: Sequence[float], decode_at, ages: np.ndarray, datasets: np.ndarray, groups, coverage: float
) -> tuple[float, dict[str, float]]:
    """The first of ``scales`` at which ``decode_at(scale)``'s interval covers ``coverage`` of
    every dataset's faces (the last scale when none does), and the coverage it reached."""
    for scale in scales:
        reached = coverage_by_dataset(ages, decode_at(scale), datasets, groups)
        if min(reached.values()) >= coverage:
            return float(scale), reached
    return float(scales[-1]), reached


def _band_of(age: float) -> str:
    for lo, hi in AGE_BANDS:
        if lo <= age <= hi:
            return band_label(lo, hi)
    return band_label(*AGE_BANDS[-1])


def _mae_by(signed: np.ndarray, keys: list[str], order: list[str]) -> dict:
    """Per key: faces, MAE, 90th percentile of the absolute error, and bias (the mean of
    estimate - truth: positive means estimated too old)."""
    out = {}
    keys_array = np.array(keys, dtype=object)
    errors = np.abs(signed)
    for key in order + sorted(set(keys) - set(order)):
        mask = keys_array == key
        if mask.any():
            out[key] = {"n": int(mask.sum()), "mae": round(float(errors[mask].mean()), 3),
                        "p90_error": round(float(np.percentile(errors[mask], 90)), 3),
                        "bias": round(float(signed[mask].mean()), 3)}
    return out


def metrics_for(scored: Scored, groups: AgeGroups, screening: tuple[int, int] | None = None) -> dict:
    """All figures for what was scored; with ``screening`` ``(legal age, buffer)`` also the
    age check's. Inputs from several datasets also get every figure per dataset, under
    ``by_dataset``: a pooled figure hides a dataset the model does badly on."""
    metrics = _metrics_of(scored.samples, scored.probabilities, Counter(scored.failed), groups, screening)
    datasets = sorted({s.dataset for s in scored.samples if s.dataset} | {d for d in scored.failed_datasets if d})
    if len(datasets) > 1:
        metrics["by_dataset"] = {}
        for dataset in datasets:
            keep = np.array([s.dataset == dataset for s in scored.samples], dtype=bool)
            failed = Counter(
                reason for (_, reason), where in zip(scored.failures, scored.failed_datasets) if where == dataset
            )
            metrics["by_dataset"][dataset] = _metrics_of(
                [s for s, k in zip(scored.samples, keep) if k], scored.probabilities[keep], failed, groups, screening
            )
    return metrics


def _metrics_of(
    samples: list[Sample], probabilities: np.ndarray, failed: Counter, groups: AgeGroups,
    screening: tuple[int, int] | None,
) -> dict:
    ages = np.array([s.age for s in samples], dtype=np.float64)
    metrics = compute_metrics(
        ages, probabilities, groups,
        genders=[s.gender for s in samples], races=[s.race for s in samples], failed=dict(failed),
    ) | {"seen": len(samples) + sum(failed.values())}
    if screening is not None:
        from agedetect.uses import screening_metrics

        metrics["screening"] = screening_metrics(list(ages), probabilities, groups, *screening)
    return metrics


def write_predictions(scored: Scored, groups: AgeGroups, path: Path) -> Path:
    """One row per scored face, ``path,true_age,age,age_low,age_high,age_group``, in the
    order scored, so a user can see which photos the model got wrong."""
    decoded = decode_ages(scored.probabilities, groups)
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["path", "true_age", "age", "age_low", "age_high", "age_group"])
        for i, sample in enumerate(scored.samples):
            writer.writerow([
                str(sample.path), sample.age, float(reported_age(decoded.age[i])), int(decoded.low[i]),
                int(decoded.high[i]), groups.labels[int(decoded.group_index[i])],
            ])
    return path


# --------------------------------------------------------------------------- report


def _figure(value: float | None, spec: str) -> str:
    """A metric for a title; ``n/a`` when nothing was scored."""
    return "n/a" if value is None else format(value, spec)


def write_report(scored: Scored, metrics: dict, groups: AgeGroups, out: Path, title: str = "agedetect evaluation") -> Path:
    """PNG plots and one HTML page that shows them with the figures."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out.mkdir(parents=True, exist_ok=True)
    ages = np.array([s.age for s in scored.samples], dtype=np.float64)
    decoded = decode_ages(scored.probabilities, groups)

    fig, ax = plt.subplots(figsize=(5.5, 4.5))
    cm = np.array(metrics["confusion_matrix"], dtype=np.float64)
    shares = cm / np.clip(cm.sum(axis=1, keepdims=True), 1, None)
    ax.imshow(shares, cmap="Blues", vmin=0, vmax=1)
    for i in range(len(cm)):
        for j in range(len(cm)):
            ax.text(j, i, f"{int(cm[i, j])}\n{shares[i, j]:.0%}", ha="center", va="center", fontsize=8,
                    color="white" if shares[i, j] > 0.5 else "black")
    ax.set_xticks(range(len(groups)), groups.labels)
    ax.set_yticks(range(len(groups)), groups.labels)
    ax.set_xlabel("predicted group")
    ax.set_ylabel("true group")
    ax.set_title(f"Age groups: accuracy {_figure(metrics['group_accuracy'], '.1%')}")
    fig.tight_layout()
    fig.savefig(out / "confusion_matrix.png", dpi=110)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(5.5, 5))
    ax.scatter(ages, decoded.age, s=4, alpha=0.3)
    top = max(100.0, float(ages.max(initial=0)))
    ax.plot([0, top], [0, top], color="black", linewidth=1)
    ax.set_xlabel("true age")
    ax.set_ylabel("predicted age")
    ax.set_title(f"Predicted vs true age: MAE {_figure(metrics['mae'], '.2f')} years")
    fig.tight_layout()
    fig.savefig(out / "predicted_vs_true.png", dpi=110)
    plt.close(fig)

    panels = [("mae_by_age_band", "age band"), ("mae_by_gender", "gender"), ("mae_by_race_label", "race label (audit)")]
    panels = [(key, name) for key, name in panels if metrics.get(key)]
    fig, axes = plt.subplots(1, max(1, len(panels)), figsize=(4.5 * max(1, len(panels)), 4), squeeze=False)
    if not panels:  # nothing was scored: the page still shows, and says so
        axes[0][0].text(0.5, 0.5, "no faces scored", ha="center", va="center")
        axes[0][0].set_axis_off()
    for ax, (key, name) in zip(axes[0], panels):
        labels = list(metrics[key])
        values = [metrics[key][k]["mae"] for k in labels]
        ax.bar(labels, values, color="#4c78a8")
        for x, (value, label) in enumerate(zip(values, labels)):
            ax.text(x, value, f"{value:.1f}\nn={metrics[key][label]['n']}", ha="center", va="bottom", fontsize=7)
        ax.set_title(f"MAE by {name}")
        ax.set_ylabel("years")
        ax.tick_params(axis="x", rotation=45)
        ax.set_ylim(0, max(values) * 1.3 if values else 1)
    fig.tight_layout()
    fig.savefig(out / "error_by_group.png", dpi=110)
    plt.close(fig)

    (out / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    write_predictions(scored, groups, out / "predictions.csv")
    with open(out / "failures.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["path", "reason"])
        writer.writerows(scored.failures)
    rows = "".join(
        f"<tr><th>{html.escape(k)}</th><td>{html.escape(str(metrics[k]))}</td></tr>"
        for k in ("n", "mae", "cs5", "group_accuracy", "interval_coverage", "mean_interval_width", "failed")
    )
    page = f"""<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>body{{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;color:#222}}
table{{border-collapse:collapse}}th,td{{padding:4px 10px;border-bottom:1px solid #ddd;text-align:left}}
img{{max-width:100%;margin:1em 0}}</style></head><body>
<h1>{html.escape(title)}</h1><table>{rows}</table>
<p>Failed inputs are listed in <a href="failures.csv">failures.csv</a>, every scored face with its estimate in
<a href="predictions.csv">predictions.csv</a>; all figures in <a href="metrics.json">metrics.json</a>.
Race labels are used only to audit error; agedetect never predicts race.</p>
<img src="confusion_matrix.png" alt="confusion matrix"><img src="predicted_vs_true.png" alt="predicted vs true age">
<img src="error_by_group.png" alt="error by age band, gender and race label"></body></html>"""
    (out / "index.html").write_text(page)
    return out / "index.html"


# --------------------------------------------------------------------------- detection

Box = tuple[float, float, float, float]


def read_labelled_boxes(path: Path) -> dict[str, list[Box]]:
    """A ground-truth file of ``file x1 y1 x2 y2`` lines (CMU+MIT's): boxes per file name."""
    truth: dict[str, list[Box]] = {}
    for line in Path(path).read_text().splitlines():
        if line.strip():
            name, *numbers = line.split()
            x1, y1, x2, y2 = (float(v) for v in numbers)
            truth.setdefault(name, []).append((x1, y1, x2, y2))
    return truth


def match_detections(detections: Iterable[tuple[Box, float]], labelled: list[Box]) -> tuple[int, int]:
    """(hits, false detections) of one photo's ``(box, score)`` detections against its
    labelled boxes: a hit is a detection whose box contains a labelled box's centre (the
    CMU+MIT labels are tight eyes-to-mouth boxes, so an overlap threshold would be unfair);
    best-scoring detections first take the nearest free centre, so each labelled face and
    each detection counts at most once.

    >>> match_detections([((0, 0, 10, 10), 0.9), ((0, 0, 10, 10), 0.8), ((50, 50, 60, 60), 0.7)],
    ...                  [(4, 4, 6, 6), (1, 1, 3, 3), (80, 80, 90, 90)])
    (2, 1)
    """
    centres = [((x1 + x2) / 2, (y1 + y2) / 2) for x1, y1, x2, y2 in labelled]
    free = set(range(len(centres)))
    hits = found = 0
    for (x1, y1, x2, y2), _ in sorted(detections, key=lambda d: -d[1]):
        found += 1
        inside = [i for i in free if x1 <= centres[i][0] <= x2 and y1 <= centres[i][1] <= y2]
        if inside:
            middle = ((x1 + x2) / 2, (y1 + y2) / 2)
            free.remove(min(inside, key=lambda i: (centres[i][0] - middle[0]) ** 2 + (centres[i][1] - middle[1]) ** 2))
            hits += 1
    return hits, found - hits


# --------------------------------------------------------------------------- regression guard

#: The figures a model's sidecar reports that the regression guard holds it to.
GUARDED_FIGURES = ("mae", "cs5", "group_accuracy", "interval_coverage",
                   "minors_passed", "teens_passed", "adults_referred")
#: How many bootstrap standard errors a freshly measured figure may move from the sidecar's.
GUARD_Z = 3.0
#: The sidecar stores figures rounded to 4 decimals; a difference within that is no change.
_ROUNDING = 5e-5


def reported_metrics(metadata: dict, dataset: str = "utkface") -> dict:
    """The held-out figures a model's sidecar reports for ``dataset``: the same numbers the
    model card prints. Reads ``metrics["by_dataset"][dataset]``, then ``metrics[dataset]``,
    then ``metrics`` itself (the flat form, one dataset). The one place that knows the shape.

    >>> reported_metrics({"metrics": {"mae": 5.0}})["mae"]
    5.0
    >>> reported_metrics({"metrics": {"utkface": {"mae": 4.0}, "aaf": {"mae": 3.0}}})["mae"]
    4.0
    >>> reported_metrics({"metrics": {"by_dataset": {"utkface": {"mae": 4.5}}, "mae": 4.2}})["mae"]
    4.5
    """
    metrics = metadata.get("metrics")
    if not isinstance(metrics, dict):
        raise DataError("the model's sidecar has no metrics to check it against")
    by_dataset = metrics.get("by_dataset")
    for candidate in (by_dataset.get(dataset) if isinstance(by_dataset, dict) else None, metrics.get(dataset), metrics):
        if isinstance(candidate, dict) and "mae" in candidate:
            return candidate
    raise DataError(f"the model's sidecar reports no figures for {dataset!r}")


def guarded_outcomes(ages, probabilities: np.ndarray, groups: AgeGroups, policy: dict | None) -> dict[str, np.ndarray]:
    """Per-face outcomes of every figure in :data:`GUARDED_FIGURES` (the screening ones under
    ``policy``, a sidecar's ``screening.policy``; left out when it is ``None``)."""
    from agedetect.uses import ScreeningPolicy, screening_outcomes

    ages = np.asarray(ages, dtype=np.float64)
    outcomes = face_outcomes(ages, decode_ages(probabilities, groups), groups)
    if policy is not None:
        rule = ScreeningPolicy(int(policy["min_age"]), int(policy["buffer"]), policy.get("basis", "estimate"),
                               policy.get("max_minor_risk"))
        outcomes |= screening_outcomes(ages, probabilities, groups, rule)
    return outcomes


@dataclass
class GuardResult:
    """A model's freshly measured figures against the ones its sidecar reports."""

    measured: dict[str, float]
    reported: dict[str, float | None]
    margin: dict[str, float]  # GUARD_Z bootstrap standard errors (plus the sidecar's rounding)
    n: dict[str, int]  # faces behind each figure

    @property
    def failures(self) -> list[str]:
        out = []
        for name in self.measured:
            reported = self.reported[name]
            if reported is None:
                out.append(f"{name}: the sidecar reports no figure to hold the model to")
            elif abs(self.measured[name] - reported) > self.margin[name]:
                out.append(f"{name}: measured {self.measured[name]:.4f} on {self.n[name]} faces, the sidecar reports "
                           f"{reported:.4f} (allowed ±{self.margin[name]:.4f}, {GUARD_Z:g} bootstrap standard errors)")
        return out


def guard_against_reported(outcomes: dict[str, np.ndarray], reported: dict, *, resamples: int = 2000,
                           seed: int = 0) -> GuardResult:
    """Compare per-face ``outcomes`` (:func:`guarded_outcomes`) with a sidecar's ``reported``
    figures (:func:`reported_metrics`): a figure fails when it moves more than
    :data:`GUARD_Z` bootstrap standard errors on that many faces. On the very faces the
    sidecar was measured on, the figures agree exactly; the margin lets the check run on a
    re-drawn split of the same data (sampling error only), and no further.

    >>> rng = np.random.default_rng(1)
    >>> errors = rng.exponential(5.0, 3000)
    >>> result = guard_against_reported({"mae": errors}, {"mae": float(errors.mean())})
    >>> result.failures, 0.2 < result.margin["mae"] < 0.35
    ([], True)
    >>> guard_against_reported({"mae": errors + 2}, {"mae": float(errors.mean())}).failures[0][:14]
    'mae: measured '
    """
    rng = np.random.default_rng(seed)
    screening = reported.get("screening") or {}
    result = GuardResult({}, {}, {}, {})
    for name, values in outcomes.items():
        values = np.asarray(values, dtype=np.float64)
        if not len(values):
            continue
        draws = values[rng.integers(0, len(values), size=(resamples, len(values)))].mean(axis=1)
        result.measured[name] = float(values.mean())
        result.reported[name] = expected = reported.get(name, screening.get(name))
        error = float(draws.std())
        if name != "mae" and expected is not None:
            # A share's error at the reported rate too, so a measurement that happens to be
            # all 0s or all 1s (a standard error of 0) is not held to a zero margin.
            error = max(error, (expected * (1 - expected) / len(values)) ** 0.5)
        result.margin[name] = GUARD_Z * error + _ROUNDING
        result.n[name] = len(values)
    return result
