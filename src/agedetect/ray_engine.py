"""Ages over millions of photos on a Ray cluster: ``agedetect predict|audience --engine ray``.

Ray Data streams blocks of input paths to a pool of actors; each actor loads the ONNX
model once and runs :func:`agedetect.batch.predict_files`, the same function as the local
engine, so a file gives the same rows on either. The results are small (a row per face),
so they are materialized in Ray's object store and written from there:

- ``OUT/faces/``: Parquet, one row per face (a video: per person, with ``start_s``, ``end_s``,
  ``frames``; null for a photo): the columns of ``agedetect predict --format
  csv`` (``error`` is always empty here), then ``p_<group>``, the face's probability of
  each age group;
- ``OUT/failures/``: Parquet, one row per file that gave no face: ``file``, ``reason``
  (``no_face``, ``unreadable_image``, ``image_too_large``, ``processing_error``, ...) and
  ``error`` (the message ``--format csv`` prints);
- ``OUT/summary.json``: the counts (:class:`RunSummary`), group counts and shares included.

Every input is accounted for: ``files_seen = files_with_faces + files_without_face +
files_failed`` (a file with three faces is one file with faces, and three rows).

Without an address Ray starts on this machine, quietly and offline (no dashboard, no
usage statistics); with one (``auto`` or ``host:6379``) the job runs on that cluster,
whose nodes need agedetect[ray] installed and the inputs and ``OUT`` on storage they all
see. Run it on the cluster (on the head node, or through ``ray job submit``): Ray Data
does not work through Ray Client (``ray://``). Rows come out in no particular order:
sort by ``file``, ``face``.
"""

from __future__ import annotations

import json
import logging
import math
import os
import sys
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

from agedetect.batch import CSV_COLUMNS, NO_FACE, VIDEO_COLUMNS, predict_files
from agedetect.errors import AgeDetectError, ModelError
from agedetect.video import is_video_name

if TYPE_CHECKING:
    import pyarrow

INSTALL_HINT = "pip install 'agedetect[ray]'"
#: Files per model call in an actor: about a second of work per batch for photos.
PHOTO_BATCH = 32
#: Aligned chips are cheap (no detection): larger batches feed the model better.
CHIP_BATCH = 64
#: Input blocks at most: more blocks balance actors better, each costs the driver a little.
MAX_BLOCKS = 20_000
#: Rows per Parquet file at least (a file per input block would mean thousands of tiny files).
ROWS_PER_FILE = 200_000


class RayUnavailableError(AgeDetectError):
    """Ray (or pyarrow) is not installed: the ray extra was not asked for."""


@dataclass
class RunSummary:
    """What a Ray run read and wrote; ``files_seen`` is the inputs given, the rest is
    counted from what the actors returned, so ``reconciled`` checks nothing was lost."""

    files_seen: int
    files_with_faces: int
    files_without_face: int
    files_failed: int
    faces: int
    groups: dict[str, int]
    shares: dict[str, float] | None
    failed_reasons: dict[str, int]
    actors: int
    seconds: float  # the job, from Ray being up to the results written
    out: str
    faces_path: str
    failures_path: str
    address: str | None = None
    engine: str = field(default="ray")

    @property
    def reconciled(self) -> bool:
        return self.files_seen == self.files_with_faces + self.files_without_face + self.files_failed

    def to_dict(self) -> dict[str, Any]:
        return asdict(self) | {"reconciled": self.reconciled}

    def audience_dict(self) -> dict[str, Any]:
        """The counts in the shape of ``agedetect audience --json`` (see agedetect.uses.Audience)."""
        return {
            "images": self.files_seen,
            "processed": self.files_with_faces + self.files_without_face,
            "with_faces": self.files_with_faces,
            "no_face_images": self.files_without_face,
            "faces": self.faces,
            "groups": self.groups,
            "shares": self.shares,
            "failed": self.files_failed,
            "failed_reasons": self.failed_reasons,
        }


def require_ray() -> Any:
    """The ``ray`` module, or a :class:`RayUnavailableError` saying how to install it."""
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # read when Ray starts; nothing leaves the machine
    try:
        import pyarrow  # noqa: F401
        import ray
        import ray.data  # noqa: F401
    except ImportError as error:
        raise RayUnavailableError(
            f"--engine ray needs Ray Data and pyarrow ({error.name or error} is missing): {INSTALL_HINT}"
        ) from None
    return ray


def run(
    files: Sequence[str],
    out: str | os.PathLike,
    *,
    address: str | None = None,
    actors: int | None = None,
    model: str | os.PathLike | None = None,
    aligned: bool = False,
    batch_size: int | None = None,
    video: Any = None,
) -> RunSummary:
    """Predict every face in ``files`` (paths or ``file://`` URIs) on Ray; write
    ``OUT/faces``, ``OUT/failures`` and ``OUT/summary.json``; return the summary.

    Uses the Ray instance this process is already connected to, if any (and leaves it
    running); else connects to ``address`` (or ``$RAY_ADDRESS``, set inside ``ray job
    submit``), or starts Ray on this machine with one CPU per core (at least one per
    actor) and stops it when done. Ray Client addresses (``ray://``) are refused: Ray Data
    does not run through Ray Client.

    Raises:
        RayUnavailableError: Ray is not installed.
        ModelError: the model cannot be loaded (here, or on a node of the cluster).
        AgeDetectError: ``OUT`` already holds results, or the Ray job failed.
        ValueError: ``actors`` or ``batch_size`` is not a whole number >= 1.
    """
    for name, value in (("actors", actors), ("batch_size", batch_size)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise ValueError(f"{name} must be a whole number >= 1, not {value!r}")
    # Inside `ray job submit`, Ray names the cluster in RAY_ADDRESS.
    address = address or os.environ.get("RAY_ADDRESS") or None
    if address is not None and address.startswith("ray://"):
        raise AgeDetectError(
            f"{address}: Ray Data does not run through Ray Client (ray://); run agedetect on the cluster: "
            "`ray job submit --address http://HEAD:8265 -- agedetect ... --engine ray`, or on the head node "
            "with --address auto"
        )
    ray = require_ray()
    from agedetect.files import default_workers
    from agedetect.inference import AgeEstimator

    out = Path(out)
    faces_path, failures_path = out / "faces", out / "failures"
    for folder in (faces_path, failures_path):
        if folder.exists() and any(folder.iterdir()):
            raise AgeDetectError(f"{folder}: already holds results of an earlier run; choose another --out")
    # The model is checked here first: a bad model is one clear error, not one per actor.
    estimator = AgeEstimator(model).load()
    labels = tuple(estimator.groups.labels)

    started_here = not ray.is_initialized()
    if started_here:
        _connect(ray, address, max(default_workers(), actors or 1))
    try:
        began = time.perf_counter()  # the job, not Ray's start (a cluster is already up)
        _quiet_ray_data()
        if actors is None:
            actors = max(1, int(ray.cluster_resources().get("CPU", 1)))
        if batch_size is None and not aligned and any(is_video_name(f) for f in files):
            batch_size = 1  # a video is a task of its own: seconds to minutes of work
        records = _predict(files, model, estimator.metadata["sha256"], labels, aligned, actors,
                           batch_size or (CHIP_BATCH if aligned else PHOTO_BATCH), video)
        try:
            records = records.materialize()
            records.map_batches(_faces_only, batch_format="pyarrow", batch_size=None).write_parquet(
                str(faces_path), min_rows_per_file=ROWS_PER_FILE)
            records.map_batches(_failures_only, batch_format="pyarrow", batch_size=None).write_parquet(
                str(failures_path), min_rows_per_file=ROWS_PER_FILE)
            tallies = records.map_batches(_tally, batch_format="pyarrow", batch_size=None).take_all()
        except ray.exceptions.RayError as error:
            raise _job_error(error) from None
        seconds = time.perf_counter() - began
    finally:
        if started_here:
            ray.shutdown()

    summary = _summarize(tallies, labels, files_seen=len(files), actors=actors, seconds=seconds,
                         out=out, faces_path=faces_path, failures_path=failures_path, address=address)
    out.mkdir(parents=True, exist_ok=True)
    (out / "summary.json").write_text(json.dumps(summary.to_dict(), indent=2) + "\n")
    return summary


def _connect(ray: Any, address: str | None, local_cpus: int) -> None:
    """Join the cluster at ``address``, or start Ray here: quiet (no dashboard, workers'
    output not relayed), offline, with ``local_cpus`` CPUs."""
    try:
        if address:
            ray.init(address=address, include_dashboard=False, log_to_driver=False, logging_level=logging.ERROR)
        else:
            ray.init(num_cpus=local_cpus, include_dashboard=False, log_to_driver=False, logging_level=logging.ERROR)
    except ConnectionError as error:
        raise AgeDetectError(f"cannot reach a Ray cluster at {address}: {error}") from None


# ---------------------------------------------------------------------- the job


def _predict(files: Sequence[str], model: Any, sha256: str, labels: tuple[str, ...], aligned: bool,
             actors: int, batch_size: int, video: Any = None) -> Any:
    import pyarrow as pa
    import ray.data

    paths = pa.array([os.fspath(f) for f in files], pa.string())
    # One block goes to one actor: a block per batch lets Ray Data spread the batches over
    # the actors (a small input is cut so every actor gets some); a huge input gets larger
    # blocks, so the driver's bookkeeping stays bounded.
    batch_size = max(1, min(batch_size, math.ceil(len(paths) / actors)))
    rows_per_block = max(batch_size, math.ceil(len(paths) / MAX_BLOCKS))
    blocks = [pa.table({"file": paths[i : i + rows_per_block]}) for i in range(0, len(paths), rows_per_block)]
    dataset = ray.data.from_arrow(blocks or [pa.table({"file": paths})])
    return dataset.map_batches(
        AgePredictor,
        fn_constructor_kwargs={"model": None if model is None else str(model), "sha256": sha256,
                               "labels": labels, "aligned": aligned, "video": video},
        batch_size=batch_size,
        batch_format="pyarrow",
        compute=ray.data.ActorPoolStrategy(size=actors),  # a fixed pool of this many actors
        num_cpus=1,  # each actor runs its model on one thread
    )


class AgePredictor:
    """A Ray Data actor: loads the model once, then turns batches of paths into records
    (:meth:`agedetect.batch.FileResult.records`)."""

    def __init__(self, model: str | None, sha256: str, labels: Sequence[str], aligned: bool,
                 video: Any = None) -> None:
        from agedetect.inference import AgeEstimator

        # One thread: the actors are the parallelism, one per CPU Ray gives them.
        self.estimator = AgeEstimator(model, threads=1).load()
        if self.estimator.metadata["sha256"] != sha256 or tuple(self.estimator.groups.labels) != tuple(labels):
            raise ModelError(
                f"{self.estimator.path}: this node's model differs from the driver's (sha256 "
                f"{self.estimator.metadata['sha256'][:12]}... vs {sha256[:12]}...); install the same "
                "agedetect version on every node"
            )
        self.labels = tuple(labels)
        self.aligned = aligned
        self.video = video
        self.schema = record_schema(self.labels)

    def __call__(self, batch: "pyarrow.Table") -> "pyarrow.Table":
        import pyarrow as pa

        results = predict_files(batch.column("file").to_pylist(), self.estimator, aligned=self.aligned,
                                video=self.video)
        return pa.Table.from_pylist([r for result in results for r in result.records(self.labels)], schema=self.schema)


def record_schema(labels: Sequence[str]) -> "pyarrow.Schema":
    """Arrow types of :meth:`agedetect.batch.FileResult.records`."""
    import pyarrow as pa

    types = {"file": pa.string(), "face": pa.int32(), "age_years": pa.int32(), "age_group": pa.string(),
             "error": pa.string(), "frames": pa.int32()}
    # A video's rows fill start_s, end_s and frames (one row per person); a photo's leave them null.
    fields = [pa.field(name, types.get(name, pa.float64())) for name in CSV_COLUMNS + VIDEO_COLUMNS]
    fields.append(pa.field("reason", pa.string()))
    fields += [pa.field(f"p_{label}", pa.float64()) for label in labels]
    return pa.schema(fields)


def _faces_only(table: "pyarrow.Table") -> "pyarrow.Table":
    import pyarrow.compute as pc

    return table.filter(pc.is_null(table["reason"])).drop_columns(["reason"])


def _failures_only(table: "pyarrow.Table") -> "pyarrow.Table":
    import pyarrow.compute as pc

    return table.filter(pc.is_valid(table["reason"])).select(["file", "reason", "error"])


def _tally(table: "pyarrow.Table") -> dict[str, list]:
    """Counts of one block, combined on the driver: only a few numbers per block travel."""
    import pyarrow.compute as pc

    faces = table.filter(pc.is_null(table["reason"]))
    failures = table.filter(pc.is_valid(table["reason"]))
    counts = {
        "faces": faces.num_rows,
        "files_with_faces": int(pc.sum(pc.equal(faces["face"], 1)).as_py() or 0),
        "groups": Counter(faces["age_group"].to_pylist()),
        "reasons": Counter(failures["reason"].to_pylist()),
        "p_sums": {name: float(pc.sum(faces[name]).as_py() or 0.0) for name in table.column_names
                   if name.startswith("p_")},
    }
    return {"tally": [json.dumps(counts)]}


def _summarize(tallies: list[dict], labels: Sequence[str], **fields: Any) -> RunSummary:
    faces = with_faces = 0
    groups: Counter = Counter()
    reasons: Counter = Counter()
    p_sums: Counter = Counter()
    for row in tallies:
        counts = json.loads(row["tally"])
        faces += counts["faces"]
        with_faces += counts["files_with_faces"]
        groups.update(counts["groups"])
        reasons.update(counts["reasons"])
        p_sums.update(counts["p_sums"])
    no_face = reasons.pop(NO_FACE, 0)
    shares = {label: round(p_sums[f"p_{label}"] / faces, 4) for label in labels} if faces else None
    return RunSummary(
        files_with_faces=with_faces, files_without_face=no_face, files_failed=sum(reasons.values()),
        faces=faces, groups={label: groups.get(label, 0) for label in labels}, shares=shares,
        failed_reasons=dict(sorted(reasons.items())),
        **{k: (str(v) if isinstance(v, Path) else v) for k, v in fields.items()},
    )


def _quiet_ray_data() -> None:
    """No execution plans or progress lines in a user's terminal log; progress bars only
    where someone watches them (an interactive stderr)."""
    from ray.data import DataContext

    context = DataContext.get_current()
    context.enable_progress_bars = sys.stderr.isatty()
    context.print_on_execution_start = False
    logging.getLogger("ray.data").setLevel(logging.ERROR)


def _job_error(error: Exception) -> AgeDetectError:
    """An agedetect error raised inside an actor (say, a node's model differs) as itself;
    any other failure of the job as one line."""
    import re

    from agedetect import errors

    cause = getattr(error, "cause", None)
    if isinstance(cause, AgeDetectError):
        return cause
    # An actor that died in its constructor reaches the driver as text (its traceback).
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(error))
    raised = re.findall(r"agedetect\.errors\.(\w+): (.+)", text)
    if raised:
        name, message = raised[-1]
        kind = getattr(errors, name, AgeDetectError)
        return (kind if isinstance(kind, type) and issubclass(kind, AgeDetectError) else AgeDetectError)(message)
    first = text.strip().splitlines()[0] if text.strip() else type(error).__name__
    return AgeDetectError(f"the Ray job failed: {first}")
