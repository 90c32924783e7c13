"""Prepare face datasets for training: find every file, check it, cut a chip, split, write a manifest.

:func:`prepare` reads folders (searched recursively) and archives (``.zip``, ``.tar``,
``.tar.gz``, ``.tgz``; also archives found inside the folders) holding UTKFace (either
release: the aligned 200x200 chips ``*.jpg.chip.jpg`` or the in-the-wild photos) and
All-Age-Faces (``NNNNNAyy.webp``), and labels CSVs (``path,age[,gender]``) naming any
other photos; :mod:`agedetect.datasets` reads each one's labels. Archive members are read
in memory; nothing is extracted and no source file is ever written to, moved or deleted.

Every file found ends in exactly one of two places under the output folder:

* ``manifest.csv``: an accepted face, with the chip written under ``chips/<split>/``
  (:data:`MANIFEST_FIELDS`);
* ``rejected.csv``: the source, a reason from :data:`REASONS` and a detail.

so ``seen == accepted + rejected`` always. ``prepare.json`` records the settings (seed,
split fractions, age groups) and the counts. :func:`load_manifest` and
:func:`load_settings` read them back for training and evaluation::

    rows = load_manifest("/tmp/utk", split="train")   # [ManifestRow(path=..., age=26, ...)]
    groups = load_settings("/tmp/utk").groups           # AgeGroups used in the manifest

Decisions, each made the same way on every run:

* Labels come from the file name (:func:`agedetect.datasets.read_name`) or the labels
  CSV; a name with a field missing is rejected (``malformed_name``), never guessed, and
  a harmless slip (a stray space, a missing dot) is accepted with a note. Both kinds are
  listed in :attr:`PrepareResult.malformed_names`. The manifest's ``dataset`` column
  says where each face came from.
* Aligned chips are already framed like UTKFace: a 200x200 JPEG chip is copied byte for
  byte once it decodes (lossless, and the fastest); other sizes or formats are re-encoded.
* Any other photo (UTKFace's in-the-wild release, All-Age-Faces' loose crops, a CSV's
  photos) goes through :func:`agedetect.faces.find_subject` (detection, a
  second look at a lower threshold when nothing is found, and with several faces the
  subject the label most likely belongs to) and :func:`agedetect.faces.align`.
* Files with the same decoded pixels and the same labels keep the first in sorted order
  of source; the others are rejected as ``duplicate_content``. Copies whose labels
  disagree (UTKFace has some, up to decades apart) are all rejected as
  ``conflicting_labels``: nothing tells which label is true.
* The split is by photo: chips sharing a photo id (UTKFace's datetime field) were cut
  from one photo and always land in the same split; photos are assigned per dataset and
  age group so each split has every dataset's age mix (:func:`assign_splits`). Same
  input and seed, byte-identical manifest.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import shutil
import stat
import tarfile
import time
import zipfile
from collections import Counter
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field, replace
from multiprocessing import get_all_start_methods, get_context
from pathlib import Path, PurePosixPath
from typing import Any, Callable, Iterable, Iterator, Sequence

import numpy as np
from PIL import Image

from agedetect.errors import DataError, ImageTooLargeError, UnreadableImageError
from agedetect.files import hold_back_ctrl_c, ignore_ctrl_c
from agedetect.images import load_image, open_regular_file
from agedetect.datasets import FaceLabel, read_labels_csv, read_name
from agedetect.labels import AgeGroups, LabelError

#: Side of the chips written, in pixels: UTKFace's own chip size.
CHIP_SIZE = 200
#: Quality of re-encoded chips (copied chips keep their bytes).
JPEG_QUALITY = 95
SPLITS = ("train", "val", "test")
DEFAULT_SPLIT = (0.7, 0.15, 0.15)
#: Files larger than this are refused unread: no face photo is this big, a zip bomb can be.
MAX_FILE_BYTES = 64 * 2**20
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff", ".gif")
ARCHIVE_SUFFIXES = (".zip", ".tar", ".tar.gz", ".tgz")

MANIFEST = "manifest.csv"
REJECTED = "rejected.csv"
SETTINGS = "prepare.json"
CHIPS = "chips"
_STAGING = ".staging"
#: Everything prepare writes; a folder holding ``prepare.json`` is emptied of these on a re-run.
_OUTPUTS = (CHIPS, _STAGING, MANIFEST, REJECTED, SETTINGS, "report")

MANIFEST_FIELDS = (
    "path",  # the chip, relative to the output folder (POSIX separators)
    "dataset",  # utkface, aaf, or a labels CSV's name
    "age",
    "gender",  # 0 male, 1 female; empty when the dataset has no gender label
    "race",  # UTKFace's 0 White, 1 Black, 2 Asian, 3 Indian, 4 Others: audit only; empty elsewhere
    "photo",  # the photo the chip was cut from; never split across train/val/test
    "source",  # the input file: a path, or "archive::member"
    "split",
    "age_group",
    "n_faces",  # faces found in an in-the-wild photo; empty for an aligned chip
    "note",
)
REJECTED_FIELDS = ("source", "reason", "detail")

#: Why a file can be rejected.
REASONS = {
    "not_an_image": "the name does not end in an image extension (.jpg, .png, ...)",
    "malformed_name": "the name is not age_gender_race_datetime.jpg[.chip.jpg] (UTKFace) or NNNNNAyy (All-Age-Faces)",
    "bad_age_label": "a labels CSV row whose age is not a number of years in 0..116",
    "age_out_of_range": "the age in the name is outside 0..116",
    "bad_gender": "the gender in the name or CSV is not 0 or 1 (male or female)",
    "bad_race": "the race in the name or CSV is not 0..4",
    "unreadable_file": "the bytes could not be read (permissions, I/O error, vanished, missing)",
    "unreadable_image": "empty, truncated, corrupt or not a decodable image",
    "image_too_large": f"over {MAX_FILE_BYTES // 2**20} MiB or the pixel limit",
    "not_a_chip": "an aligned chip (*.chip.jpg) that is not square",
    "duplicate_content": "the same pixels and labels as a file kept earlier in sorted order",
    "conflicting_labels": "copies of the same pixels whose labels disagree: none is kept",
    "no_face_found": "an in-the-wild photo in which the detector found no face",
    "unsafe_member": "an archive member with an absolute or '..' path, or a link or device",
    "nested_archive": "an archive inside an archive: extract the outer one first",
    "unreadable_archive": "an archive that could not be opened or listed",
    "processing_error": "an unexpected error while processing (a bug: please report it)",
}


@dataclass(frozen=True)
class PrepareSettings:
    """What decides a prepared dataset; written to ``prepare.json``.

    ``balanced_groups=K`` replaces ``groups`` by K groups holding equal shares of the
    training ages (:meth:`AgeGroups.balanced`), computed after the split.
    """

    seed: int = 0
    split: tuple[float, float, float] = DEFAULT_SPLIT
    groups: AgeGroups = field(default_factory=AgeGroups.default)
    balanced_groups: int | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "split", check_split(self.split))
        if self.balanced_groups is not None and self.balanced_groups < 2:
            raise ValueError(f"balanced_groups must be at least 2, got {self.balanced_groups}")


@dataclass(frozen=True)
class ManifestRow:
    """One accepted face: a chip and its labels."""

    path: Path  # absolute path of the 200x200 chip
    dataset: str
    age: int
    gender: int | None  # 0 male, 1 female; None when unknown
    race: int | None  # audit only: never predicted; None outside UTKFace
    photo: str  # photo id; rows sharing it come from one photo
    source: str
    split: str
    age_group: str
    n_faces: int | None  # None for an aligned chip (no detection ran)
    note: str


@dataclass
class PrepareResult:
    """The counts of one :func:`prepare` run (``seen == accepted + rejected``)."""

    out: Path
    seen: int
    accepted: int
    rejected: int
    reasons: dict[str, int]
    splits: dict[str, int]
    group_counts: dict[str, dict[str, int]]  # split -> age group label -> chips
    groups: AgeGroups
    dataset_counts: dict[str, dict[str, int]]  # dataset -> split -> chips
    malformed_names: list[dict[str, str]]
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "out": str(self.out),
            "seen": self.seen,
            "accepted": self.accepted,
            "rejected": self.rejected,
            "reasons": self.reasons,
            "splits": self.splits,
            "age_groups": self.groups.to_dict(),
            "group_counts": self.group_counts,
            "datasets": self.dataset_counts,
            "malformed_names": self.malformed_names,
            "seconds": round(self.seconds, 2),
        }


# --------------------------------------------------------------------------- settings


def check_split(split: Sequence[float] | str) -> tuple[float, float, float]:
    """Train/val/test fractions from ``"0.7,0.15,0.15"`` or a sequence; they must sum to 1.

    >>> check_split("0.8, 0.1, 0.1")
    (0.8, 0.1, 0.1)
    """
    if isinstance(split, str):
        try:
            split = [float(part) for part in split.split(",")]
        except ValueError:
            raise ValueError(f"split must be three fractions like 0.7,0.15,0.15, got {split!r}") from None
    values = tuple(float(value) for value in split)
    if len(values) != 3 or any(not 0 <= v <= 1 for v in values) or values[0] == 0:
        raise ValueError(f"split must be three fractions train,val,test in 0..1 (train > 0), got {values}")
    if abs(sum(values) - 1.0) > 1e-6:
        raise ValueError(f"split fractions must sum to 1, got {values} (sum {sum(values):g})")
    return values  # type: ignore[return-value]


# --------------------------------------------------------------------------- discovery


@dataclass(frozen=True)
class _Entry:
    """One input file: on disk (``path``), or ``member`` of an archive at ``path``."""

    source: str
    name: str
    path: str
    kind: str = "file"  # "file", "zip", "tar"
    member: str = ""
    reject: tuple[str, str] | None = None  # decided while listing
    label: FaceLabel | None = None  # given by a labels CSV rather than the name


def _archive_kind(name: str) -> str | None:
    lower = name.lower()
    if lower.endswith(".zip"):
        return "zip"
    if lower.endswith((".tar", ".tar.gz", ".tgz")):
        return "tar"
    return None


def _unsafe_path(name: str) -> bool:
    parts = PurePosixPath(name.replace("\\", "/")).parts
    return name.startswith(("/", "\\")) or ".." in parts or (len(name) > 1 and name[1] == ":")


def _list_archive(path: Path) -> list[_Entry]:
    kind = _archive_kind(path.name)
    entries: list[_Entry] = []
    try:
        if kind == "zip":
            with zipfile.ZipFile(path) as archive:
                members = [
                    (info.filename, stat.S_ISLNK(info.external_attr >> 16))
                    for info in archive.infolist()
                    if not info.is_dir()
                ]
            special = {name: "a symbolic link" for name, is_link in members if is_link}
            names = [name for name, _ in members]
        else:
            with tarfile.open(path, "r:*") as archive:
                infos = [info for info in archive.getmembers() if not info.isdir()]
            special = {info.name: _tar_type(info) for info in infos if not info.isfile()}
            names = [info.name for info in infos]
    except (OSError, zipfile.BadZipFile, tarfile.TarError, EOFError, ValueError) as error:
        return [_Entry(str(path), path.name, str(path), reject=("unreadable_archive", _why(error)))]
    seen: Counter[str] = Counter()
    for name in names:
        seen[name] += 1
        # A name stored twice is two inputs: keep both visible and distinct.
        source = f"{path}::{name}" + (f" [{seen[name]}]" if seen[name] > 1 else "")
        base = PurePosixPath(name.replace("\\", "/")).name
        reject = None
        if _unsafe_path(name):
            reject = ("unsafe_member", f"member path {name!r} leaves the archive")
        elif name in special:
            reject = ("unsafe_member", f"member {name!r} is {special[name]}, not a file")
        elif _archive_kind(base):
            reject = ("nested_archive", f"{name!r} is an archive inside {path.name}; extract it first")
        entries.append(_Entry(source, base, str(path), kind, name if seen[name] == 1 else "", reject))
    return entries


def _tar_type(info: tarfile.TarInfo) -> str:
    if info.issym():
        return "a symbolic link"
    if info.islnk():
        return "a hard link"
    return "a device, FIFO or other special file"


def _discover(sources: Iterable[str | os.PathLike]) -> list[_Entry]:
    """Every file under ``sources`` (folders searched recursively, archives listed), sorted.

    A file reached twice (a folder and a file inside it both given) counts once.
    """
    entries: dict[str, _Entry] = {}

    def add_file(path: Path) -> None:
        if _archive_kind(path.name) and path.is_file():
            for entry in _list_archive(path):
                entries.setdefault(entry.source, entry)
        else:
            entries.setdefault(str(path), _Entry(str(path), path.name, str(path)))

    def unlistable(error: OSError) -> None:
        # A folder that cannot be listed is one input we could not read, not silence.
        name = str(error.filename)
        reason = ("unreadable_file", f"cannot list folder: {_why(error)}")
        entries.setdefault(name, _Entry(name, Path(name).name, name, reject=reason))

    for source in sources:
        root = Path(os.path.abspath(source))
        if root.suffix.lower() == ".csv" and root.is_file():
            for row in read_labels_csv(root):
                where = str(row.path)
                reject = (row.reason, row.detail) if row.label is None else None
                key = where if row.label is not None else f"{root}::line {row.line}"
                entries.setdefault(key, _Entry(key, row.path.name, where, reject=reject, label=row.label))
            continue
        if root.is_dir():
            # Symlinked folders are not followed (no loops); symlinked files are read.
            for folder, subfolders, files in os.walk(root, onerror=unlistable):
                subfolders.sort()
                for name in sorted(files):
                    add_file(Path(folder) / name)
        elif root.exists() or root.is_symlink():
            add_file(root)
        else:
            raise DataError(f"{source}: no such file or folder")
    return [entries[key] for key in sorted(entries)]


# --------------------------------------------------------------------------- one file


@dataclass(frozen=True)
class _Task:
    index: int
    entry: _Entry
    label: FaceLabel
    data: bytes | None = None  # an archive member, read by the parent


@dataclass(frozen=True)
class _Outcome:
    index: int
    source: str
    name: str
    label: FaceLabel | None
    reason: str = ""
    detail: str = ""
    pixel_hash: str = ""
    n_faces: int | None = None
    note: str = ""


def _why(error: BaseException) -> str:
    return getattr(error, "strerror", None) or str(error) or type(error).__name__


def _check_name(index: int, entry: _Entry) -> _Outcome | FaceLabel:
    """The label, or a rejection decided from the name alone (nothing read)."""
    if entry.reject is not None:
        return _Outcome(index, entry.source, entry.name, None, *entry.reject)
    if entry.label is not None:
        return entry.label
    if not entry.name.lower().endswith(IMAGE_SUFFIXES):
        return _Outcome(
            index, entry.source, entry.name, None, "not_an_image", f"{entry.name!r} is not an image file name"
        )
    try:
        return read_name(entry.name)
    except LabelError as error:
        return _Outcome(index, entry.source, entry.name, None, error.reason, error.detail)


def _read_file(path: str) -> bytes:
    """A regular file's bytes; special files (a FIFO would block forever) and oversized ones refused."""
    with open_regular_file(path) as handle:
        info = os.fstat(handle.fileno())
        if info.st_size > MAX_FILE_BYTES:
            raise ImageTooLargeError(f"{info.st_size / 2**20:.0f} MiB, over {MAX_FILE_BYTES // 2**20} MiB")
        return handle.read(MAX_FILE_BYTES + 1)


def _examine(task: _Task, staging: str) -> _Outcome:
    """Read, decode and chip one labelled file; the chip goes to ``staging/<index>.jpg``."""
    entry, label = task.entry, task.label
    base = _Outcome(task.index, entry.source, entry.name, label)
    try:
        data = task.data if task.data is not None else _read_file(entry.path)
    except ImageTooLargeError as error:
        return replace(base, reason="image_too_large", detail=str(error))
    except FileNotFoundError:
        return replace(base, reason="unreadable_file", detail="no such file (missing, or vanished before it was read)")
    except OSError as error:
        return replace(base, reason="unreadable_file", detail=f"cannot read: {_why(error)}")
    if len(data) > MAX_FILE_BYTES:
        return replace(base, reason="image_too_large", detail=f"over {MAX_FILE_BYTES // 2**20} MiB")
    try:
        pixels = load_image(data)
    except ImageTooLargeError as error:
        return replace(base, reason="image_too_large", detail=_strip_name(error))
    except UnreadableImageError as error:
        return replace(base, reason="unreadable_image", detail=_strip_name(error))
    digest = hashlib.sha256(repr(pixels.shape).encode() + pixels.tobytes()).hexdigest()
    base = replace(base, pixel_hash=digest)
    target = Path(staging) / f"{task.index}.jpg"
    try:
        if label.is_chip:
            return _write_chip(base, data, pixels, target)
        return _write_photo_chip(base, pixels, target)
    except Exception as error:  # noqa: BLE001  keep the count whole; the detail names the bug
        return replace(base, reason="processing_error", detail=f"{type(error).__name__}: {error}")


def _strip_name(error: Exception) -> str:
    # load_image(bytes) names the input "uploaded image"; the rejected row already has the source.
    return str(error).split(": ", 1)[-1]


def _write_chip(outcome: _Outcome, data: bytes, pixels: np.ndarray, target: Path) -> _Outcome:
    height, width = pixels.shape[:2]
    if height != width:
        return replace(
            outcome, reason="not_a_chip", detail=f"aligned chips are square, this is {width}x{height}"
        )
    with Image.open(io.BytesIO(data)) as image:
        upright = image.getexif().get(0x0112, 1) == 1
        copyable = image.format == "JPEG" and upright and width == CHIP_SIZE
    if copyable:
        target.write_bytes(data)
        return outcome
    chip = Image.fromarray(pixels)
    note = f"re-encoded a {width}x{height} {'chip' if upright else 'rotated chip'}"
    if width != CHIP_SIZE:
        chip = chip.resize((CHIP_SIZE, CHIP_SIZE), Image.Resampling.LANCZOS)
    chip.save(target, "JPEG", quality=JPEG_QUALITY)
    return replace(outcome, note=note)


def _write_photo_chip(outcome: _Outcome, pixels: np.ndarray, target: Path) -> _Outcome:
    from agedetect.faces import align, find_subject

    subject, faces = find_subject(pixels)
    if subject is None:
        return replace(outcome, reason="no_face_found", detail="the detector found no face", n_faces=0)
    Image.fromarray(align(pixels, subject, size=CHIP_SIZE)).save(target, "JPEG", quality=JPEG_QUALITY)
    note = f"{len(faces)} faces; kept the main subject" if len(faces) > 1 else ""
    return replace(outcome, n_faces=len(faces), note=note)


# --------------------------------------------------------------------------- reading inputs


def _tasks(entries: list[_Entry], done: Callable[[_Outcome], None]) -> Iterator[_Task]:
    """Labelled files to examine, archive members with their bytes; name rejections go to ``done``."""
    by_archive: dict[tuple[str, str], dict[str, tuple[int, _Entry, FaceLabel]]] = {}
    for index, entry in enumerate(entries):
        checked = _check_name(index, entry)
        if isinstance(checked, _Outcome):
            done(checked)
        elif entry.kind == "file":
            yield _Task(index, entry, checked)
        elif not entry.member:  # the second copy of a name stored twice in one archive
            done(
                _Outcome(
                    index,
                    entry.source,
                    entry.name,
                    checked,
                    "unreadable_file",
                    "a second member of the same name cannot be read apart from the first",
                )
            )
        else:
            by_archive.setdefault((entry.kind, entry.path), {})[entry.member] = (index, entry, checked)
    for (kind, path), wanted in by_archive.items():
        try:
            for member, data in _read_members(kind, path, set(wanted)):
                index, entry, label = wanted.pop(member)
                yield _Task(index, entry, label, data)
            error = "the member was not found when the archive was read again"
        except (OSError, zipfile.BadZipFile, tarfile.TarError, EOFError, ValueError) as failure:
            error = f"the archive failed while being read: {_why(failure)}"
        for index, entry, label in wanted.values():
            done(_Outcome(index, entry.source, entry.name, label, "unreadable_file", error))


def _read_members(kind: str, path: str, wanted: set[str]) -> Iterator[tuple[str, bytes]]:
    """Bytes of the ``wanted`` members, in archive order, read in memory (never extracted).

    A member larger than :data:`MAX_FILE_BYTES` yields only its first bytes past the limit,
    so the examiner rejects it without holding a zip bomb in memory.
    """
    if kind == "zip":
        with zipfile.ZipFile(path) as archive:
            for info in archive.infolist():
                if info.filename in wanted:
                    wanted.discard(info.filename)
                    with archive.open(info) as member:
                        yield info.filename, member.read(MAX_FILE_BYTES + 1)
        return
    # Streaming mode reads a .tar.gz front to back once, without seeking.
    with tarfile.open(path, "r|*") as archive:
        for info in archive:
            if info.isfile() and info.name in wanted:
                wanted.discard(info.name)
                member = archive.extractfile(info)
                yield info.name, member.read(MAX_FILE_BYTES + 1) if member else b""


# --------------------------------------------------------------------------- split


def assign_splits(
    photo_ids: Sequence[str],
    strata: Sequence[int],
    split: Sequence[float] = DEFAULT_SPLIT,
    seed: int = 0,
) -> list[str]:
    """Give each row a split so rows of one photo stay together and each stratum is split alike.

    Rows sharing a photo id (UTKFace's datetime field) form one photo; a photo's
    stratum is its rows' most common one (the lowest on a tie). Within each stratum the
    photos are put in the order of a hash of ``seed`` and the photo id and laid end to
    end, and a photo goes to the split whose share of the stratum's rows its middle row
    falls in, so every split gets its fraction of every stratum to within one photo.

    >>> assign_splits(["a", "b", "b", "c"], [0, 0, 0, 0], (0.5, 0.25, 0.25), seed=1)
    ['train', 'val', 'val', 'test']
    """
    fractions = check_split(split)
    if len(photo_ids) != len(strata):
        raise ValueError(f"{len(photo_ids)} photo ids but {len(strata)} strata")
    rows_of: dict[str, list[int]] = {}
    for row, photo in enumerate(photo_ids):
        rows_of.setdefault(photo, []).append(row)
    photos = sorted(rows_of)
    stratum_of = {
        photo: int(np.bincount([int(strata[r]) for r in rows_of[photo]]).argmax()) for photo in photos
    }
    bounds = np.cumsum(fractions)[:-1]  # train | val | test boundaries within a stratum

    def shuffled(photo: str) -> str:
        # A hash, not a random permutation: adding or removing a photo moves only the
        # photos near a boundary to another split, instead of reshuffling everything.
        return hashlib.sha256(f"{seed}:{photo}".encode()).hexdigest()

    result = [""] * len(photo_ids)
    for stratum in sorted(set(stratum_of.values())):
        members = sorted((photo for photo in photos if stratum_of[photo] == stratum), key=shuffled)
        total = sum(len(rows_of[photo]) for photo in members)
        placed = 0
        for photo in members:
            rows = rows_of[photo]
            middle = (placed + len(rows) / 2) / total
            name = SPLITS[int(np.searchsorted(bounds, middle, side="right"))]
            placed += len(rows)
            for row in rows:
                result[row] = name
    return result


# --------------------------------------------------------------------------- prepare


def prepare(
    sources: Sequence[str | os.PathLike],
    out: str | os.PathLike,
    settings: PrepareSettings | None = None,
    *,
    workers: int | None = None,
    on_progress: Callable[[int, int], None] | None = None,
) -> PrepareResult:
    """Turn labelled face files into split, labelled 200x200 chips under ``out``.

    Args:
        sources: folders and archives of UTKFace and All-Age-Faces files, and labels
            CSVs (``path,age[,gender]``, paths relative to the CSV), in any mix.
        out: output folder; created, or emptied of a previous run's outputs. It may not
            lie inside a source folder or contain one.
        settings: seed, split fractions and age groups.
        workers: processes examining files; default one per CPU; 1 works in-process.
        on_progress: called with ``(files done, files found)`` as files finish.

    Raises:
        DataError: a source is missing, or ``out`` cannot be used.
    """
    started = time.perf_counter()
    settings = settings or PrepareSettings()
    if not sources:
        raise DataError("no sources given: pass folders or archives of face files, or labels CSVs")
    out = Path(os.path.abspath(out))
    source_paths = [Path(os.path.abspath(source)) for source in sources]
    _check_out(out, source_paths)
    entries = _discover(source_paths)
    _clear_out(out)
    staging = out / _STAGING
    staging.mkdir(parents=True)

    outcomes: list[_Outcome] = []

    def done(outcome: _Outcome) -> None:
        outcomes.append(outcome)
        if on_progress is not None:
            on_progress(len(outcomes), len(entries))

    if on_progress is not None:
        on_progress(0, len(entries))
    tasks = _tasks(entries, done)
    workers = workers or _cpu_count()
    if workers <= 1:
        for task in tasks:
            done(_examine(task, str(staging)))
    else:
        try:
            _examine_in_pool(tasks, str(staging), workers, done)
        except BrokenProcessPool:
            raise DataError(
                f"a worker process died (out of memory?) while preparing {out}; rerun with --workers 1"
            ) from None

    result = _finish(out, outcomes, settings, started)
    shutil.rmtree(staging, ignore_errors=True)
    return result


def _cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _examine_in_pool(
    tasks: Iterator[_Task], staging: str, workers: int, done: Callable[[_Outcome], None]
) -> None:
    """Examine tasks in ``workers`` processes, in chunks, with a bounded number in flight."""
    chunk_size = 32
    # fork where there is one: spawn re-imports the caller's __main__, which fails for
    # `python -` and is slow. The workers touch nothing the parent's threads hold.
    context = get_context("fork" if "fork" in get_all_start_methods() else "spawn")
    pool = ProcessPoolExecutor(workers, mp_context=context, initializer=ignore_ctrl_c)
    pending: set[Future] = set()

    def submit(chunk: list[_Task]) -> None:
        # Ctrl+C is held back while a chunk is queued (and the workers start): neither a
        # half-queued chunk nor a worker's traceback can come of it.
        with hold_back_ctrl_c():
            pending.add(pool.submit(_examine_chunk, chunk, staging))

    def collect(block: bool) -> None:
        nonlocal pending
        finished, pending = wait(pending, timeout=None if block else 0, return_when=FIRST_COMPLETED)
        for future in finished:
            for outcome in future.result():
                done(outcome)

    try:
        chunk: list[_Task] = []
        for task in tasks:
            chunk.append(task)
            if len(chunk) == chunk_size:
                submit(chunk)
                chunk = []
                collect(block=len(pending) >= 3 * workers)  # bounds archive bytes held in memory
        if chunk:
            submit(chunk)
        while pending:
            collect(block=True)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)  # on Ctrl+C: drop what has not started


def _examine_chunk(tasks: list[_Task], staging: str) -> list[_Outcome]:
    return [_examine(task, staging) for task in tasks]


def _check_out(out: Path, sources: list[Path]) -> None:
    for source in sources:
        if out == source or source in out.parents:
            raise DataError(f"{out}: the output folder may not lie inside the source {source}")
        if out in source.parents:
            raise DataError(f"{out}: the output folder may not contain the source {source}")
    if out.exists() and not out.is_dir():
        raise DataError(f"{out}: exists and is not a folder")
    if out.is_dir() and any(out.iterdir()):
        if not ((out / SETTINGS).exists() or (out / _STAGING).exists()):
            raise DataError(
                f"{out}: folder is not empty and holds no earlier prepare output; choose a new folder"
            )


def _clear_out(out: Path) -> None:
    for name in _OUTPUTS:
        target = out / name
        if target.is_dir() and not target.is_symlink():
            shutil.rmtree(target)
        elif target.exists() or target.is_symlink():
            target.unlink()
    out.mkdir(parents=True, exist_ok=True)


def _finish(out: Path, outcomes: list[_Outcome], settings: PrepareSettings, started: float) -> PrepareResult:
    outcomes.sort(key=lambda o: o.source)
    staging = out / _STAGING

    # Copies of one image (same decoded pixels): when they agree on the labels the first in
    # sorted order of source is kept; when they disagree no one can tell which label is
    # true, so none is kept (UTKFace has ~200 such pairs, some ten years apart).
    copies: dict[str, list[_Outcome]] = {}
    for outcome in outcomes:
        if not outcome.reason:
            copies.setdefault(outcome.pixel_hash, []).append(outcome)
    verdict: dict[int, tuple[str, str]] = {}
    for group in copies.values():
        if len(group) == 1:
            continue
        if len({_labels(o) for o in group}) > 1:
            listing = "; ".join(f"{_labels(o)} in {o.source}" for o in group)
            for outcome in group:
                verdict[outcome.index] = (
                    "conflicting_labels",
                    f"{len(group)} copies of these pixels carry different age/gender/race labels: {listing}",
                )
        else:
            for outcome in group[1:]:
                verdict[outcome.index] = ("duplicate_content", f"same pixels as {group[0].source}")
    final: list[_Outcome] = []
    for outcome in outcomes:
        if outcome.index in verdict:
            (staging / f"{outcome.index}.jpg").unlink(missing_ok=True)
            reason, detail = verdict[outcome.index]
            outcome = replace(outcome, reason=reason, detail=detail)
        final.append(outcome)
    accepted = [o for o in final if not o.reason]
    rejected = [o for o in final if o.reason]

    # Split by photo, stratified by age group; balanced groups come from the train ages.
    ages = np.array([o.label.age for o in accepted], dtype=np.int64)
    groups = settings.groups
    if settings.balanced_groups:
        if len(ages) < settings.balanced_groups:
            raise DataError(
                f"{len(ages)} accepted faces cannot fill {settings.balanced_groups} balanced groups"
            )
        groups = AgeGroups.balanced(ages, settings.balanced_groups)
    # Strata are (dataset, age group): each dataset is split on its own age mix. A
    # stratum's photos are assigned apart from the others', so adding a dataset leaves
    # the split of the ones already there as it was.
    datasets = sorted({o.label.dataset for o in accepted})
    strata = [
        datasets.index(o.label.dataset) * len(groups) + int(index)
        for o, index in zip(accepted, groups.index_of(ages))
    ]
    splits = assign_splits([o.label.photo for o in accepted], strata, settings.split, settings.seed)
    if settings.balanced_groups:
        train_ages = [age for age, name in zip(ages, splits) if name == "train"]
        groups = AgeGroups.balanced(train_ages, settings.balanced_groups)

    for name in SPLITS:
        for dataset in datasets:
            (out / CHIPS / name / dataset).mkdir(parents=True, exist_ok=True)
    rows = []
    used: set[str] = set()
    for outcome, split in zip(accepted, splits):
        label = outcome.label
        stem, suffix = _chip_name(outcome)
        folder = f"{CHIPS}/{split}/{label.dataset}"
        relative, copy = f"{folder}/{stem}{suffix}", 1
        while relative in used:  # two faces with one label from one photo: number them
            copy += 1
            relative = f"{folder}/{stem}-{copy}{suffix}"
        used.add(relative)
        os.replace(staging / f"{outcome.index}.jpg", out / relative)
        note = "; ".join(part for part in (label.note, outcome.note) if part)
        rows.append(
            (
                relative,
                label.dataset,
                label.age,
                _blank_if_none(label.gender),
                _blank_if_none(label.race),
                label.photo,
                outcome.source,
                split,
                groups.label_of(label.age),
                "" if outcome.n_faces is None else outcome.n_faces,
                note,
            )
        )
    split_column, group_column = MANIFEST_FIELDS.index("split"), MANIFEST_FIELDS.index("age_group")
    rows.sort(key=lambda row: (SPLITS.index(row[split_column]), row[0]))
    _write_csv(out / MANIFEST, MANIFEST_FIELDS, rows)
    _write_csv(out / REJECTED, REJECTED_FIELDS, [(o.source, o.reason, o.detail) for o in rejected])

    reasons = dict(sorted(Counter(o.reason for o in rejected).items()))
    split_counts = {name: sum(1 for row in rows if row[split_column] == name) for name in SPLITS}
    group_counts = {
        name: {
            label: sum(1 for row in rows if row[split_column] == name and row[group_column] == label)
            for label in groups.labels
        }
        for name in SPLITS
    }
    dataset_counts = {
        dataset: {name: sum(1 for row in rows if row[1] == dataset and row[split_column] == name) for name in SPLITS}
        for dataset in datasets
    }
    malformed = [
        {
            "name": o.name,
            "source": o.source,
            "status": "rejected" if o.reason else "accepted",
            "detail": f"{o.reason}: {o.detail}" if o.reason else o.label.note,
        }
        for o in final
        if o.reason == "malformed_name" or (o.label is not None and o.label.note)
    ]
    result = PrepareResult(
        out=out,
        seen=len(final),
        accepted=len(rows),
        rejected=len(rejected),
        reasons=reasons,
        splits=split_counts,
        group_counts=group_counts,
        groups=groups,
        dataset_counts=dataset_counts,
        malformed_names=malformed,
        seconds=time.perf_counter() - started,
    )
    record = {
        "format": "agedetect-prepare/1",
        "chip_size": CHIP_SIZE,
        "framing": "utkface",
        "seed": settings.seed,
        "split": dict(zip(SPLITS, settings.split)),
        "age_groups": groups.to_dict(),
        "balanced_groups": settings.balanced_groups,
        "counts": {
            key: value
            for key, value in result.to_dict().items()
            if key in ("seen", "accepted", "rejected", "reasons", "splits", "group_counts", "datasets")
        },
        "malformed_names": malformed,
    }
    (out / SETTINGS).write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    return result


def _chip_name(outcome: _Outcome) -> tuple[str, str]:
    """Stem and suffix of an accepted face's chip: UTKFace chips keep UTKFace's name form
    (with the slips of the public release mended), so evaluation can read them as a
    folder; other datasets keep their file's stem.

    >>> label = read_name("61_1_0_20170109142408075 .jpg.chip.jpg")
    >>> _chip_name(_Outcome(0, "x", "61_1_0_20170109142408075 .jpg.chip.jpg", label))
    ('61_1_0_20170109142408075', '.jpg.chip.jpg')
    """
    label = outcome.label
    if label.dataset == "utkface":
        from agedetect.labels import parse_utkface_name

        name = parse_utkface_name(outcome.name)
        return f"{name.age}_{name.gender}_{name.race}_{name.datetime}", ".jpg.chip.jpg"
    return PurePosixPath(outcome.name).stem, ".jpg"


def _blank_if_none(value: int | None) -> int | str:
    return "" if value is None else value


def _labels(outcome: _Outcome) -> str:
    label = outcome.label
    return f"{label.age}/{_blank_if_none(label.gender)}/{_blank_if_none(label.race)}"


def _write_csv(path: Path, header: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    with open(path, "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)


# --------------------------------------------------------------------------- reading back


def load_manifest(
    root: str | os.PathLike, split: str | None = None, datasets: Iterable[str] | None = None
) -> list[ManifestRow]:
    """The accepted faces of a prepared folder, optionally one split and some datasets
    only, with absolute chip paths.

    Raises:
        DataError: no readable ``manifest.csv`` in ``root``, or a dataset in ``datasets``
            that the split does not hold (the message lists the ones it does).
        ValueError: ``split`` is not one of train, val, test.
    """
    if split is not None and split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; choose one of {', '.join(SPLITS)}")
    root = Path(root).resolve()
    path = root / MANIFEST
    try:
        with open(path, encoding="utf-8", newline="") as handle:
            reader = csv.DictReader(handle)
            if tuple(reader.fieldnames or ()) != MANIFEST_FIELDS:
                raise DataError(
                    f"{path}: unexpected columns {reader.fieldnames}; expected {list(MANIFEST_FIELDS)} "
                    f"(a folder prepared by an older agedetect: run `agedetect data prepare` again)"
                )
            records = list(reader)
    except FileNotFoundError:
        raise DataError(
            f"{root}: no {MANIFEST}; run `agedetect data prepare SRC --out {root}` first"
        ) from None
    rows = []
    for line, record in enumerate(records, start=2):
        if split is not None and record["split"] != split:
            continue
        try:
            rows.append(
                ManifestRow(
                    path=root / record["path"],
                    dataset=record["dataset"],
                    age=int(record["age"]),
                    gender=int(record["gender"]) if record["gender"] else None,
                    race=int(record["race"]) if record["race"] else None,
                    photo=record["photo"],
                    source=record["source"],
                    split=record["split"],
                    age_group=record["age_group"],
                    n_faces=int(record["n_faces"]) if record["n_faces"] else None,
                    note=record["note"],
                )
            )
        except (TypeError, ValueError):
            raise DataError(f"{path}, line {line}: malformed row {record}") from None
    if datasets is not None:
        wanted, known = set(datasets), sorted({row.dataset for row in rows})
        if wanted - set(known):
            where = f"the {split!r} split" if split is not None else MANIFEST
            raise DataError(
                f"{root}: no dataset {', '.join(map(repr, sorted(wanted - set(known))))} in {where}; "
                f"it holds: {', '.join(known)}"
            )
        rows = [row for row in rows if row.dataset in wanted]
    return rows


def load_settings(root: str | os.PathLike) -> PrepareSettings:
    """The settings a folder was prepared with; ``.groups`` are the groups in its manifest."""
    record = load_record(root)
    try:
        return PrepareSettings(
            seed=int(record["seed"]),
            split=tuple(record["split"][name] for name in SPLITS),
            groups=AgeGroups.from_dict(record["age_groups"]),
            balanced_groups=record.get("balanced_groups"),
        )
    except (KeyError, TypeError, ValueError) as error:
        raise DataError(f"{Path(root) / SETTINGS}: missing or bad field ({error})") from None


def load_record(root: str | os.PathLike) -> dict[str, Any]:
    """``prepare.json`` of a prepared folder: settings, counts and the malformed names."""
    path = Path(root) / SETTINGS
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DataError(
            f"{Path(root)}: no {SETTINGS}; run `agedetect data prepare SRC --out {root}` first"
        ) from None
    except (OSError, json.JSONDecodeError) as error:
        raise DataError(f"{path}: unreadable ({error})") from None
