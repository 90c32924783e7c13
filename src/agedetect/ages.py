"""The one decode: a distribution over ages becomes an age, an interval and group odds.

Every model agedetect ships predicts probabilities over whole ages ``0..N-1`` (the last
bin holds everyone older). Training, evaluation, the CLI and the web app all read ages
through :func:`decode_ages`, so they can never disagree.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from agedetect.labels import AgeGroups

#: The central share of the predicted distribution that the interval covers.
INTERVAL_MASS = 0.8


@dataclass(frozen=True)
class DecodedAges:
    """Per-face quantities decoded from age distributions, as arrays over faces."""

    age: np.ndarray  # (N,) the estimate: the distribution's median age
    years: np.ndarray  # (N,) the estimate in whole years, as shown (:func:`whole_years`)
    low: np.ndarray  # (N,) lower end of the central INTERVAL_MASS interval
    high: np.ndarray  # (N,) upper end
    group_index: np.ndarray  # (N,) group of the estimate in whole years
    group_probabilities: np.ndarray  # (N, G) probability mass in each group


def decode_ages(probabilities: np.ndarray, groups: AgeGroups, mass: float = INTERVAL_MASS) -> DecodedAges:
    """Decode ``(N, bins)`` age probabilities (rows sum to 1).

    The estimate is the distribution's median: of all single answers it has the lowest
    expected absolute error (the error users feel and MAE counts), and it is the middle of
    the same quantiles the interval is made of. Bin ``k`` holds ages ``k-0.5..k+0.5``, so
    the median is interpolated within the bin where the CDF crosses one half. The interval
    runs between the ``(1-mass)/2`` and ``(1+mass)/2`` quantiles. The group is the group of
    the whole-year age shown to people (:func:`whole_years`), so the two always agree.

    >>> p = np.zeros((1, 101)); p[0, 30] = 0.2; p[0, 34] = 0.3; p[0, 40] = 0.5
    >>> d = decode_ages(p, AgeGroups.default())
    >>> float(d.age[0]), int(d.years[0]), float(d.low[0]), float(d.high[0]), d.group_index.tolist()
    (34.5, 35, 30.0, 40.0, [2])
    >>> d.group_probabilities.round(2).tolist()
    [[0.0, 0.0, 0.5, 0.5, 0.0]]
    """
    probs = np.asarray(probabilities, dtype=np.float64)
    if probs.ndim != 2:
        raise ValueError(f"expected (faces, bins) probabilities, got shape {probs.shape}")
    probs = probs / np.clip(probs.sum(axis=1, keepdims=True), 1e-12, None)
    ages = np.arange(probs.shape[1], dtype=np.float64)
    cdf = np.cumsum(probs, axis=1)
    median = _median(probs, cdf)
    low = _quantile(cdf, (1.0 - mass) / 2.0)
    high = _quantile(cdf, (1.0 + mass) / 2.0)
    # Each group's mass: sum the bins whose age falls in it.
    bin_group = groups.index_of(ages)
    group_probs = np.zeros((probs.shape[0], len(groups)))
    np.add.at(group_probs.T, bin_group, probs.T)
    years = whole_years(median)
    return DecodedAges(
        age=median,
        years=years,
        low=np.minimum(low, median),
        high=np.maximum(high, median),
        group_index=groups.index_of(years),
        group_probabilities=group_probs,
    )


def widen(probabilities: np.ndarray, scale: np.ndarray | float) -> np.ndarray:
    """Flatten each row of age probabilities as if its softmax temperature were ``scale``
    times higher (``p ** (1/scale)``, renormalised); ``scale`` 1 leaves a row as it is.

    Used where the model has less to go on than its validation faces gave it (a face
    only a few dozen pixels wide in the photo), so the interval says so.

    >>> p = np.array([[0.0, 0.2, 0.6, 0.2, 0.0]])
    >>> widen(p, 1.0).round(3).tolist(), widen(p, 2.0).round(3).tolist()
    ([[0.0, 0.2, 0.6, 0.2, 0.0]], [[0.0, 0.268, 0.464, 0.268, 0.0]])
    """
    probs = np.asarray(probabilities, dtype=np.float64)
    scale = np.broadcast_to(np.asarray(scale, dtype=np.float64), (len(probs),))[:, None]
    if np.any(scale < 1.0) or np.any(~np.isfinite(scale)):
        raise ValueError("a widening scale is a finite number >= 1")
    flattened = np.power(np.clip(probs, 0.0, None), 1.0 / scale)
    return flattened / np.clip(flattened.sum(axis=1, keepdims=True), 1e-300, None)


#: Decimals of a year every answer reports an estimate with (JSON, CSV, the live feed).
AGE_DECIMALS = 2


def reported_age(age: np.ndarray | float) -> np.ndarray:
    """An estimate as every answer reports it: years to :data:`AGE_DECIMALS` decimals.

    >>> float(reported_age(53.4963))
    53.5
    """
    return np.round(np.asarray(age, dtype=np.float64), AGE_DECIMALS)


def whole_years(age: np.ndarray | float) -> np.ndarray:
    """An estimate as the whole number of years people are shown: the reported age
    (:func:`reported_age`) rounded, halves up (as JavaScript's ``Math.round``; Python's
    ``round`` would take halves to even). Rounding the reported figure, not the raw one,
    means whoever rounds the ``age`` of an answer gets its ``age_years``.

    Every display (page, CLI tables, annotated photos) and the ``age_years`` and
    ``age_group`` of every answer use this one value.

    >>> whole_years(np.array([50.49, 50.5, 50.65, 20.5, 53.4963])).tolist()
    [50, 51, 51, 21, 54]
    """
    return np.floor(reported_age(age) + 0.5).astype(np.int64)


def _median(probs: np.ndarray, cdf: np.ndarray) -> np.ndarray:
    """The age where each row's CDF reaches one half, each bin spread evenly over its year."""
    bin_ = np.argmax(cdf >= 0.5 - 1e-9, axis=1)
    rows = np.arange(len(probs))
    below = np.where(bin_ > 0, cdf[rows, np.maximum(bin_ - 1, 0)], 0.0)
    inside = (0.5 - below) / np.clip(probs[rows, bin_], 1e-12, None)
    return np.clip(bin_ - 0.5 + inside, 0.0, probs.shape[1] - 1)


def _quantile(cdf: np.ndarray, q: float) -> np.ndarray:
    """The age at which each row's CDF first reaches ``q``: the bin where it does, as a
    whole age (bins are whole years, so a finer answer would be false precision)."""
    return np.argmax(cdf >= q - 1e-9, axis=1).astype(np.float64)


#: Ways to fuse one person's age distributions from several frames (:func:`fuse_ages`).
FUSION_METHODS = ("mean", "product", "median")


def fuse_ages(
    probabilities: np.ndarray, groups: AgeGroups, method: str = "mean", *, temperature: float | None = None,
) -> tuple[DecodedAges, np.ndarray]:
    """One person's age from the age distributions ``(frames, bins)`` of their frames.

    - ``"mean"``: the average distribution (a mixture: it keeps every frame's doubt);
    - ``"product"``: frames as independent evidence, ``p ∝ exp(sum(log p_t) / temperature)``;
      ``temperature=1`` is the plain product (it narrows the interval as frames add up, as
      if each frame were a new photo), ``temperature=frames`` (the default) the geometric
      mean, as sure as one frame;
    - ``"median"``: the median of the frames' estimates, interval ends and group odds
      taken the same way frame by frame.

    Returns the decode (arrays of one row, as :func:`decode_ages` gives) and the fused
    distribution (for ``"median"``, the mean distribution, which the decode's group odds
    do not use). Which one a video uses was measured (``bench/video.py``).

    >>> p = np.zeros((3, 101)); p[0, 30] = p[1, 32] = p[2, 50] = 1.0
    >>> [float(fuse_ages(p, AgeGroups.default(), m)[0].age[0]) for m in ("mean", "median")]
    [32.0, 32.0]
    >>> q = np.full((2, 101), 1e-6); q[0, 30:33] = 1; q[1, 32:35] = 1
    >>> round(float(fuse_ages(q, AgeGroups.default(), "product", temperature=1.0)[0].age[0]), 3)
    32.0
    >>> fuse_ages(p, AgeGroups.default(), "vote")
    Traceback (most recent call last):
    ...
    ValueError: unknown fusion method 'vote'; choose one of mean, product, median
    """
    if method not in FUSION_METHODS:
        raise ValueError(f"unknown fusion method {method!r}; choose one of {', '.join(FUSION_METHODS)}")
    probs = np.asarray(probabilities, dtype=np.float64)
    if probs.ndim != 2 or not len(probs):
        raise ValueError(f"expected (frames, bins) probabilities of at least one frame, got shape {probs.shape}")
    probs = probs / np.clip(probs.sum(axis=1, keepdims=True), 1e-12, None)
    mean = probs.mean(axis=0)
    if method == "mean":
        return decode_ages(mean[None], groups), mean
    if method == "product":
        scale = float(temperature) if temperature is not None else float(len(probs))
        if not scale > 0:
            raise ValueError(f"temperature must be > 0, not {temperature!r}")
        logits = np.log(np.clip(probs, 1e-12, None)).sum(axis=0) / scale
        fused = np.exp(logits - logits.max())
        fused /= fused.sum()
        return decode_ages(fused[None], groups), fused
    each = decode_ages(probs, groups)
    age = np.median(each.age, keepdims=True)
    years = whole_years(age)
    return DecodedAges(
        age=age,
        years=years,
        low=np.minimum(np.median(each.low, keepdims=True), age),
        high=np.maximum(np.median(each.high, keepdims=True), age),
        group_index=groups.index_of(years),
        group_probabilities=np.median(each.group_probabilities, axis=0, keepdims=True),
    ), mean
