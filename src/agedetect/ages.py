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

    age: np.ndarray  # (N,) expected age
    low: np.ndarray  # (N,) lower end of the central INTERVAL_MASS interval
    high: np.ndarray  # (N,) upper end
    group_index: np.ndarray  # (N,) group of the expected age
    group_probabilities: np.ndarray  # (N, G) probability mass in each group


def decode_ages(probabilities: np.ndarray, groups: AgeGroups, mass: float = INTERVAL_MASS) -> DecodedAges:
    """Decode ``(N, bins)`` age probabilities (rows sum to 1).

    The age is the expected value (robust and smooth, as in DEX); the interval runs
    between the ``(1-mass)/2`` and ``(1+mass)/2`` quantiles, interpolated within bins.

    >>> p = np.zeros((1, 101)); p[0, 30] = 0.5; p[0, 40] = 0.5
    >>> d = decode_ages(p, AgeGroups.default())
    >>> float(d.age[0]), float(d.low[0]), float(d.high[0]), d.group_index.tolist()
    (35.0, 30.0, 40.0, [2])
    >>> d.group_probabilities.round(2).tolist()
    [[0.0, 0.0, 0.5, 0.5, 0.0]]
    """
    probs = np.asarray(probabilities, dtype=np.float64)
    if probs.ndim != 2:
        raise ValueError(f"expected (faces, bins) probabilities, got shape {probs.shape}")
    probs = probs / np.clip(probs.sum(axis=1, keepdims=True), 1e-12, None)
    ages = np.arange(probs.shape[1], dtype=np.float64)
    expected = probs @ ages
    cdf = np.cumsum(probs, axis=1)
    low = _quantile(cdf, (1.0 - mass) / 2.0)
    high = _quantile(cdf, (1.0 + mass) / 2.0)
    # Each group's mass: sum the bins whose age falls in it.
    bin_group = groups.index_of(ages)
    group_probs = np.zeros((probs.shape[0], len(groups)))
    np.add.at(group_probs.T, bin_group, probs.T)
    return DecodedAges(
        age=expected,
        low=np.minimum(low, expected),
        high=np.maximum(high, expected),
        group_index=groups.index_of(expected),
        group_probabilities=group_probs,
    )


def _quantile(cdf: np.ndarray, q: float) -> np.ndarray:
    """The age at which each row's CDF first reaches ``q``: the bin where it does, as a
    whole age (bins are whole years, so a finer answer would be false precision)."""
    return np.argmax(cdf >= q - 1e-9, axis=1).astype(np.float64)
