"""Labels: UTKFace file names and age groups.

UTKFace encodes labels in file names, ``[age]_[gender]_[race]_[datetime].jpg`` (whole
photos) or ``....jpg.chip.jpg`` (aligned chips). Race is parsed only so evaluation can
audit error by group; nothing in agedetect predicts it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Iterable, Sequence

import numpy as np

from agedetect.errors import DataError

MAX_AGE = 116  # the oldest age in UTKFace
GENDERS = {0: "male", 1: "female"}
RACES = {0: "White", 1: "Black", 2: "Asian", 3: "Indian", 4: "Others"}

# age_gender_race_datetime, then ".jpg" or ".jpg.chip.jpg"; tolerant of the slips in the
# public release that lose no label (a stray space, a missing dot, a datetime with a digit
# too many), which are accepted with a note.
_NAME = re.compile(
    r"^(?P<age>\d+)_(?P<gender>\d+)_(?P<race>\d+)_(?P<datetime>\d{15,19})"
    r"(?P<slip>\s*)(?P<dot>\.?)jpg(?P<chip>\.chip\.jpg)?$",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class UTKFaceLabel:
    """Labels read from one UTKFace file name."""

    age: int
    gender: int  # 0 male, 1 female
    race: int  # 0 White, 1 Black, 2 Asian, 3 Indian, 4 Others — audit only
    datetime: str  # yyyymmddHHMMSSFFF; chips sharing it come from one photo
    is_chip: bool
    note: str = ""  # a harmless slip in the name, kept visible in the manifest


class LabelError(DataError):
    """A file name that does not carry a complete, valid UTKFace label."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


def parse_utkface_name(name: str) -> UTKFaceLabel:
    """Read age, gender, race and datetime from a UTKFace file name.

    Raises :class:`LabelError` with ``reason`` ``malformed_name`` (a field missing or
    garbled: never guessed), ``age_out_of_range``, ``bad_gender`` or ``bad_race``.

    >>> parse_utkface_name("26_1_2_20170116174525125.jpg.chip.jpg").age
    26
    >>> parse_utkface_name("61_1_20170109142408075.jpg.chip.jpg")
    Traceback (most recent call last):
    ...
    agedetect.labels.LabelError: malformed_name: '61_1_20170109142408075.jpg.chip.jpg' has 3 of the 4 fields age_gender_race_datetime
    """
    match = _NAME.match(name)
    if match is None:
        stem = name.split(".")[0]
        fields = stem.split("_")
        if len(fields) != 4:
            detail = f"{name!r} has {len(fields)} of the 4 fields age_gender_race_datetime"
        else:
            detail = f"{name!r} is not age_gender_race_datetime.jpg[.chip.jpg]"
        raise LabelError("malformed_name", detail)
    age, gender, race = int(match["age"]), int(match["gender"]), int(match["race"])
    if not 0 <= age <= MAX_AGE:
        raise LabelError("age_out_of_range", f"{name!r}: age {age} is outside 0..{MAX_AGE}")
    if gender not in GENDERS:
        raise LabelError("bad_gender", f"{name!r}: gender {gender} is not 0 or 1")
    if race not in RACES:
        raise LabelError("bad_race", f"{name!r}: race {race} is not 0..4")
    notes = []
    if match["slip"]:
        notes.append("stray space in file name")
    if not match["dot"]:
        notes.append("missing dot in file name")
    if len(match["datetime"]) != 17:
        notes.append(f"datetime has {len(match['datetime'])} digits, not 17")
    return UTKFaceLabel(
        age=age,
        gender=gender,
        race=race,
        datetime=match["datetime"],
        is_chip=bool(match["chip"]),
        note="; ".join(notes),
    )


@dataclass(frozen=True)
class AgeGroups:
    """Age groups given by their lower edges after the first: ``edges=(21, 27)`` means
    ``0-20, 21-26, 27+``.

    >>> groups = AgeGroups.default()
    >>> groups.labels
    ('0-20', '21-26', '27-35', '36-50', '51+')
    >>> groups.index_of(np.array([0, 20, 21, 35, 36, 90]))
    array([0, 0, 1, 2, 3, 4])
    >>> groups.label_of(26)
    '21-26'
    """

    edges: tuple[int, ...] = (21, 27, 36, 51)
    labels: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        edges = tuple(int(edge) for edge in self.edges)
        if any(b <= a for a, b in zip(edges, edges[1:])) or (edges and edges[0] <= 0):
            raise ValueError(f"age group edges must be positive and increasing, got {edges}")
        object.__setattr__(self, "edges", edges)
        if not self.labels:
            bounds = (0, *edges)
            labels = [f"{lo}-{hi - 1}" for lo, hi in zip(bounds, edges)] + [f"{bounds[-1]}+"]
            object.__setattr__(self, "labels", tuple(labels))
        elif len(self.labels) != len(edges) + 1:
            raise ValueError(f"{len(edges) + 1} groups need as many labels, got {self.labels}")

    @classmethod
    def default(cls) -> "AgeGroups":
        """The brief's five balanced groups: 0-20, 21-26, 27-35, 36-50, 51+."""
        return cls()

    @classmethod
    def parse(cls, text: str) -> "AgeGroups":
        """Groups from edges written as ``"21,27,36,51"``.

        >>> AgeGroups.parse("18, 65").labels
        ('0-17', '18-64', '65+')
        """
        try:
            edges = tuple(int(part) for part in text.split(",") if part.strip())
        except ValueError:
            raise ValueError(f"age group edges must be integers like 21,27,36,51, got {text!r}") from None
        return cls(edges)

    @classmethod
    def balanced(cls, ages: Iterable[int], k: int) -> "AgeGroups":
        """K groups holding as close to equal numbers of ``ages`` as whole years allow.

        >>> AgeGroups.balanced(list(range(100)), 4).edges
        (25, 50, 75)
        """
        values = np.sort(np.asarray(list(ages), dtype=np.int64))
        if k < 2 or len(values) < k:
            raise ValueError(f"need k >= 2 and at least k ages, got k={k} and {len(values)} ages")
        edges: list[int] = []
        for q in range(1, k):
            edge = int(values[int(round(q * len(values) / k))])
            edge = max(edge, (edges[-1] + 1) if edges else 1)
            edges.append(edge)
        return cls(tuple(edges))

    def index_of(self, ages: np.ndarray | Sequence[float] | float) -> np.ndarray:
        """Group index of each age (ages are floored, so 20.9 belongs to 0-20)."""
        return np.searchsorted(np.asarray(self.edges), np.floor(np.asarray(ages)), side="right")

    def label_of(self, age: float) -> str:
        return self.labels[int(self.index_of(age))]

    def to_dict(self) -> dict:
        return {"edges": list(self.edges), "labels": list(self.labels)}

    @classmethod
    def from_dict(cls, data: dict) -> "AgeGroups":
        return cls(tuple(data["edges"]), tuple(data.get("labels", ())))

    def __len__(self) -> int:
        return len(self.labels)
