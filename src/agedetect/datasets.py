"""Dataset readers: where each labelled face dataset keeps its labels, read into one form.

Every reader turns what a dataset says about a file into a :class:`FaceLabel`; nothing
downstream (``data prepare``, training, evaluation) knows which dataset a face came from
except through ``FaceLabel.dataset``. Three readers:

* **UTKFace** — labels in the file name, ``age_gender_race_datetime.jpg[.chip.jpg]``
  (:func:`agedetect.labels.parse_utkface_name`); the datetime names the photo.
* **All-Age-Faces** — ``NNNNNAyy.ext``: image number and age; numbers up to 07380 are
  women, the rest men (the authors' list files code female 0, male 1, the opposite of
  UTKFace's; here both are stored in UTKFace's coding, 0 male, 1 female). No race label.
* **A labels CSV** — ``path,age[,gender[,race]]`` for any folder of photos; paths are
  relative to the CSV, the dataset is named after the CSV file.

>>> read_name("00127A07.webp")
FaceLabel(dataset='aaf', age=7, gender=1, race=None, photo='aaf:00127', is_chip=False, note='')
>>> read_name("26_1_2_20170116174525125.jpg.chip.jpg").photo
'20170116174525125'
"""

from __future__ import annotations

import csv
import math
import os
import re
from dataclasses import dataclass
from pathlib import Path

from agedetect.errors import DataError
from agedetect.labels import GENDERS, MAX_AGE, RACES, LabelError, parse_utkface_name

#: The datasets :func:`read_name` recognises by file name.
NAMED_DATASETS = ("utkface", "aaf")

_AAF_NAME = re.compile(r"^(?P<number>\d{5})A(?P<age>\d{2})\.(?:webp|jpe?g|png)$", re.IGNORECASE)
#: All-Age-Faces numbers 00000-07380 are women, 07381-13321 men (the dataset's README).
AAF_LAST_FEMALE = 7380


@dataclass(frozen=True)
class FaceLabel:
    """What a dataset says about one file.

    ``photo`` names the photo the face was cut from; faces sharing it never straddle
    train/val/test. Other datasets prefix it with their name (``aaf:00127``), so it never
    collides with UTKFace's bare datetimes, which stay as they were so a UTKFace-only
    split is the same as before datasets were added.
    ``is_chip`` marks a face already in UTKFace chip framing (no detection needed).
    """

    dataset: str
    age: int
    gender: int | None  # 0 male, 1 female (UTKFace's coding), None when the dataset has none
    race: int | None  # UTKFace's five labels, audit only; None elsewhere
    photo: str
    is_chip: bool
    note: str = ""


def read_aaf_name(name: str) -> FaceLabel:
    """Labels from an All-Age-Faces name ``NNNNNAyy.ext``.

    >>> read_aaf_name("09000A45.webp").gender  # past 07380: a man
    0
    """
    match = _AAF_NAME.match(name)
    if match is None:
        raise LabelError("malformed_name", f"{name!r} is not an All-Age-Faces name NNNNNAyy.webp")
    number = int(match["number"])
    return FaceLabel(
        dataset="aaf",
        age=int(match["age"]),
        gender=1 if number <= AAF_LAST_FEMALE else 0,
        race=None,
        photo=f"aaf:{match['number']}",
        is_chip=False,
    )


def read_utkface_name(name: str) -> FaceLabel:
    """Labels from a UTKFace name; the photo is the datetime's first 17 digits.

    Two names in the public release carry an 18th digit (``201701161846515488``) on the
    datetime of a photo whose other faces have 17; the prefix puts them with those faces.
    """
    label = parse_utkface_name(name)
    return FaceLabel(
        dataset="utkface",
        age=label.age,
        gender=label.gender,
        race=label.race,
        photo=label.datetime[:17],
        is_chip=label.is_chip,
        note=label.note,
    )


def read_name(name: str) -> FaceLabel:
    """Labels carried by a file name: All-Age-Faces when it has that form, else UTKFace.

    Raises :class:`LabelError` (``malformed_name``, ``age_out_of_range``, ...) for a
    name that is neither; the message describes UTKFace's form, the usual intent.
    """
    if _AAF_NAME.match(name):
        return read_aaf_name(name)
    return read_utkface_name(name)


# --------------------------------------------------------------------------- labels CSV

_GENDER_WORDS = {"0": 0, "m": 0, "male": 0, "man": 0, "1": 1, "f": 1, "female": 1, "woman": 1}


@dataclass(frozen=True)
class CsvRow:
    """One row of a labels CSV: the file it names and its label, or why it has none."""

    line: int
    path: Path
    label: FaceLabel | None
    reason: str = ""
    detail: str = ""


def dataset_name(csv_path: str | os.PathLike) -> str:
    """The dataset a labels CSV describes: its file name without ``.csv``, lower case.

    >>> dataset_name("/data/Family-Photos.csv")
    'family-photos'
    """
    return Path(csv_path).stem.lower()


def read_labels_csv(csv_path: str | os.PathLike, *, aligned: bool = False) -> list[CsvRow]:
    """Every data row of a ``path,age[,gender[,race]]`` CSV, each with its label or reason.

    ``gender`` is 0/1 in UTKFace's coding (0 male, 1 female) or a word (male, female, m,
    f); empty means unknown. A row with a bad age is ``bad_age_label``, a bad gender or
    race ``bad_gender``/``bad_race``: never guessed. Each row is its own photo.

    Raises:
        DataError: the file cannot be read or lacks the ``path`` and ``age`` columns.
    """
    csv_path = Path(csv_path)
    try:
        with open(csv_path, encoding="utf-8-sig", newline="") as handle:
            reader = csv.DictReader(handle)
            columns = [name.strip().lower() for name in reader.fieldnames or ()]
            if not {"path", "age"} <= set(columns):
                raise DataError(f"{csv_path}: a labels CSV needs the columns path and age, it has {columns}")
            reader.fieldnames = columns
            records = list(reader)
    except OSError as error:
        raise DataError(f"{csv_path}: cannot read ({error.strerror or error})") from None
    except (UnicodeDecodeError, csv.Error) as error:
        raise DataError(f"{csv_path}: not a readable CSV ({error})") from None
    dataset = dataset_name(csv_path)
    rows = []
    for line, record in enumerate(records, start=2):
        relative = (record.get("path") or "").strip()
        path = (csv_path.parent / relative).resolve() if relative else csv_path.parent / f"<line {line}>"
        try:
            label = _csv_label(dataset, record, relative or f"line {line}", aligned)
        except LabelError as error:
            rows.append(CsvRow(line, path, None, error.reason, f"{csv_path.name} line {line}: {error.detail}"))
            continue
        if not relative:
            rows.append(CsvRow(line, path, None, "malformed_name", f"{csv_path.name} line {line}: empty path"))
            continue
        rows.append(CsvRow(line, path, label))
    return rows


def _csv_label(dataset: str, record: dict, photo: str, aligned: bool) -> FaceLabel:
    text = (record.get("age") or "").strip()
    try:
        value = float(text)
        if not (math.isfinite(value) and 0 <= value <= MAX_AGE):
            raise ValueError
        age = int(value)
    except (TypeError, ValueError):
        raise LabelError("bad_age_label", f"age {text!r} is not a whole number of years in 0..{MAX_AGE}") from None
    gender_text = (record.get("gender") or "").strip().lower()
    if gender_text and gender_text not in _GENDER_WORDS:
        raise LabelError("bad_gender", f"gender {gender_text!r} is not 0 (male), 1 (female), male or female")
    race_text = (record.get("race") or "").strip()
    if race_text and race_text not in {str(key) for key in RACES}:
        raise LabelError("bad_race", f"race {race_text!r} is not one of 0..4")
    return FaceLabel(
        dataset=dataset,
        age=age,
        gender=_GENDER_WORDS[gender_text] if gender_text else None,
        race=int(race_text) if race_text else None,
        photo=f"{dataset}:{photo}",
        is_chip=aligned,
    )


__all__ = [
    "AAF_LAST_FEMALE", "GENDERS", "NAMED_DATASETS", "CsvRow", "FaceLabel", "dataset_name",
    "read_aaf_name", "read_labels_csv", "read_name", "read_utkface_name",
]
