"""The whole-year age people are shown and the age group always agree (issue 12, item 5):
``selfie-many-people.jpg``'s face read "51 years · group 36-50" when the group came from the
unrounded median (50.65) and the display rounded it."""

from __future__ import annotations

import numpy as np
import pytest

from agedetect.ages import decode_ages, reported_age, whole_years
from agedetect.inference import AgeEstimator, FacePrediction
from agedetect.labels import AgeGroups

from shared_data import PEOPLE, needs_photos


@pytest.mark.parametrize("age, shown", [(50.49, 50), (50.5, 51), (50.65, 51), (20.5, 21), (0.2, 0), (99.5, 100)])
def test_whole_years_rounds_halves_up_as_the_page_does(age: float, shown: int) -> None:
    assert int(whole_years(age)) == shown


def test_rounding_the_reported_age_gives_the_age_shown() -> None:
    """An answer reports ``age`` to two decimals and ``age_years``; a reader (or the page's
    Math.round) rounding the first must get the second. couple.jpg's second face read
    53.496: reported 53.5 but shown 53 when the whole years came from the unrounded median."""
    ages = np.concatenate([np.arange(0.0, 101.0, 0.001), [53.4963, 20.4951, 20.4949, 7.49500001]])
    reported = reported_age(ages)
    assert (np.floor(reported + 0.5) == whole_years(ages)).all()
    assert (np.abs(reported - ages) <= 0.005 + 1e-9).all()
    face = FacePrediction((0, 0, 10, 10), ((0, 0),) * 5, 0.99, 53.4963, (45.0, 62.0), "51+", {"51+": 1.0})
    data = face.to_dict()
    assert data["age"] == 53.5 and data["age_years"] == 54


def test_the_group_is_the_group_of_the_age_shown() -> None:
    groups = AgeGroups.default()
    # A distribution whose median is 50.65: shown as 51, so in 51+.
    p = np.zeros((1, 101))
    p[0, 50], p[0, 51] = 0.35, 0.65
    decoded = decode_ages(p, groups)
    assert 50.5 < decoded.age[0] < 51 and decoded.years[0] == 51
    assert groups.labels[decoded.group_index[0]] == "51+"
    # And over many random distributions.
    rng = np.random.default_rng(0)
    decoded = decode_ages(rng.dirichlet(np.full(101, 0.05), size=2000), groups)
    assert (decoded.group_index == groups.index_of(whole_years(decoded.age))).all()


@needs_photos
def test_every_face_of_the_selfie_agrees() -> None:
    estimator = AgeEstimator()
    groups = estimator.groups
    faces = estimator.predict(PEOPLE / "selfie-many-people.jpg")
    assert faces
    for face in faces:
        data = face.to_dict()
        assert data["age_years"] == whole_years(face.age) and groups.label_of(data["age_years"]) == data["age_group"]
