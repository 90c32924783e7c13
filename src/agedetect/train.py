"""Training: prepared chips -> a checkpoint that records every setting that made it.

Chips are decoded once into memory (and cached beside the prepared data), augmented on
the fly as whole batches, and fitted with a soft-label loss over whole ages:

- the target is a Gaussian around the true age (neighbouring ages look alike, so an
  off-by-one answer should cost less than an off-by-twenty one), plus
- an L1 term on the expected age, the quantity users see.

Three options aim at photos unlike the training set (docs/MODEL_CARD.md measures each
by training on one dataset and scoring another):

- ``datasets`` trains (and validates) on some of a prepared folder's datasets only, which
  is how the leave-one-dataset-out figures are made;
- ``balance`` samples each epoch's chips with weights ``n^-balance``, ``n`` the number
  of chips of the same dataset and age, so a dataset's crowded ages (UTKFace's 26-year-olds,
  three times their neighbours) stop being the answer the network falls back on when unsure (0: every
  chip alike, 1: every age bin of every dataset alike);
- ``degrade`` is the share of training chips that also get one of the faults of other
  cameras and eras: JPEG blocking, blur, a low-resolution original, sensor noise, sepia or
  a colour cast;
- ``surroundings`` is the share of training chips whose surroundings (everything outside
  an oval around the face: hair, background, shoulders) come from another chip of the
  batch, so the surroundings a dataset happens to photograph its ages in stop telling the
  network an age (bench/whole_photos.py: a face on another background moved 13-17s'
  estimates up by years);
- ``old_prints`` is the share of training chips made into an old print, scanned: grey or
  sepia, faded (contrast cut to 50-80%, often lighter) and grainy; scanned family photos are
  such prints, and each of those faults alone moved 13-17s' estimates up (bench/faults.py);
- ``consistency`` weighs a second view of every training chip, given one more fault of
  another camera or era, whose expected age is pulled toward the first view's (the
  first held fixed): the faults alone still moved 13-17s' estimates up 1-2 years, so
  the network learns that a fault says nothing about age rather than being shown a few
  faulted chips (stability training, Zheng et al. 2016).

Two more try to make one network stand in for an ensemble: ``ema`` validates and
saves an exponential moving average of the weights (smoother than the last step's), and
``teacher`` mixes a trained model's age distribution for each chip into the target
(distillation: the teacher's doubt about a face is information a whole-year label lacks).
On UTKFace neither beat a plain member at 12 epochs (docs/MODEL_CARD.md); the pretrained
layers' learning rate (``body_lr_scale``) mattered far more.

A run folder holds ``config.json``, ``history.jsonl``, ``last.pt`` (resumable) and
``best.pt`` (lowest validation MAE).
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import math
import os
import random
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from PIL import Image
from torch.nn import functional as F

from agedetect.ages import decode_ages
from agedetect.data import load_manifest
from agedetect.errors import DataError
from agedetect.labels import AgeGroups
from agedetect.models import NUM_AGES, AgeModel, ModelSpec, create_model, model_from_spec, soft_ovals


@dataclass(frozen=True)
class TrainConfig:
    """One training run's settings; written to ``RUN/config.json`` and into checkpoints."""

    model: str
    data: str
    out: str
    epochs: int = 10
    # The learning rate's cosine spans this many epochs; None: ``epochs``. More than ``epochs``
    # stops partway down it, where a longer run's validation MAE was lowest (the shipped members).
    schedule_epochs: int | None = None
    batch_size: int = 128
    lr: float = 1e-3
    weight_decay: float = 1e-4
    seed: int = 0
    device: str = "auto"
    input_size: int | None = None  # None: the model's default
    crop: float | None = None  # share of the chip the network sees; None: the model's default
    label_sigma: float = 2.0
    l1_weight: float = 0.05
    limit: int | None = None  # train on the first N chips only (smoke tests)
    threads: int | None = None
    ema: float | None = None  # decay of the weight average that is validated and saved; None: off
    teacher: str | None = None  # an exported ONNX model whose distributions join the target
    teacher_weight: float = 0.5  # share of the teacher's distribution in the target
    teacher_gate: float | None = None  # years: the share fades where the teacher's estimate strays from the label
    body_lr_scale: float | None = None  # pretrained layers' share of lr; None: the model's (see _param_groups)
    datasets: tuple[str, ...] | None = None  # train and validate on these datasets only; None: all
    balance: float = 0.0  # sampling weight n^-balance, n = chips of the same dataset and age
    degrade: float = 0.0  # share of training chips given a fault of another camera or era
    surroundings: float = 0.0  # share of training chips given another chip's surroundings
    old_prints: float = 0.0  # share of training chips made into a faded, grainy grey or sepia print
    consistency: float = 0.0  # weight of the faulted view's pull toward the chip's own answer; 0: off
    face_only: bool = False  # the network sees only an oval around the face (models.face_oval)
    teacher_debias: bool = False  # take the teacher's mean error at each true age out of its distributions
    network_side: int | None = None  # descriptor models only: the side chips are scaled to inside the model; None: its own
    tune_levels: int = 0  # descriptor models only: how many of the network's last levels learn; 0: frozen

    def __post_init__(self) -> None:
        if self.datasets is not None:
            object.__setattr__(self, "datasets", tuple(self.datasets))
        for share in ("balance", "degrade", "surroundings", "old_prints"):
            if not 0.0 <= getattr(self, share) <= 1.0:
                raise ValueError(f"{share} must be in 0..1, got {getattr(self, share)}")
        if self.schedule_epochs is not None and self.schedule_epochs < self.epochs:
            raise ValueError(f"schedule_epochs ({self.schedule_epochs}) must be at least epochs ({self.epochs})")
        if self.consistency < 0:
            raise ValueError(f"consistency must be >= 0, got {self.consistency}")
        if self.teacher_gate is not None and self.teacher_gate <= 0:
            raise ValueError(f"teacher_gate must be positive, got {self.teacher_gate}")
        if self.teacher_debias and not self.teacher:
            raise ValueError("teacher_debias needs a teacher (--teacher) whose error it takes out")

    def to_dict(self) -> dict:
        record = dataclasses.asdict(self)
        if self.datasets is not None:
            record["datasets"] = list(self.datasets)  # as JSON reads it back
        return record


def resolve_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device not in ("cpu", "cuda"):
        raise ValueError(f"unknown device {device!r}; choose one of: auto, cpu, cuda")
    if device == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda was asked for but no CUDA GPU is visible")
    return torch.device(device)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


# --------------------------------------------------------------------------- data


def load_chips(paths: list[Path], size: int, cache_dir: Path | None = None) -> np.ndarray:
    """Decode chips to a ``(N, size, size, 3)`` uint8 array, resized with Pillow's
    antialiased bilinear filter (the same resampling ``faces.align`` gives a photo).

    Cached as ``.npy`` keyed by the file list and size, since decoding 20k JPEGs costs
    more than an epoch of the small models.
    """
    key = hashlib.sha256(("\n".join(map(str, paths)) + f"|{size}").encode()).hexdigest()[:16]
    cache = cache_dir / f"chips-{size}-{key}.npy" if cache_dir else None
    if cache is not None and cache.exists():
        return np.load(cache)

    def read(path: Path) -> np.ndarray:
        with Image.open(path) as image:
            image = image.convert("RGB")
            if image.size != (size, size):
                image = image.resize((size, size), Image.BILINEAR)
            return np.asarray(image, dtype=np.uint8)

    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        chips = np.stack(list(pool.map(read, paths))) if paths else np.zeros((0, size, size, 3), np.uint8)
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        _atomic_save_array(chips, cache)
    return chips


@dataclass
class Split:
    chips: np.ndarray  # (N, S, S, 3) uint8
    ages: np.ndarray  # (N,) int
    datasets: np.ndarray  # (N,) str: the dataset of each chip


def load_split(
    data_dir: Path, split: str, size: int, limit: int | None = None, datasets: Sequence[str] | None = None
) -> Split:
    """One split's chips at ``size`` pixels, optionally only some datasets' (and the
    first ``limit`` of those)."""
    rows = load_manifest(data_dir, split=split, datasets=datasets)
    if limit is not None:
        rows = rows[:limit]
    if not rows:
        raise DataError(f"{data_dir}: no chips in the {split!r} split of manifest.csv")
    chips = load_chips([row.path for row in rows], size, data_dir / "cache")
    return Split(
        chips, np.array([row.age for row in rows], dtype=np.int64), np.array([row.dataset for row in rows])
    )


def sampling_weights(ages: np.ndarray, datasets: np.ndarray, balance: float, bin_years: int = 1) -> np.ndarray:
    """Weights ``n^-balance`` summing to 1, ``n`` the chips sharing a chip's dataset and
    ``bin_years`` age bin (ages 80 and over share one bin). Whole years by default: UTKFace
    holds three times as many 26-year-olds as 25- or 27-year-olds, a spike that five-year
    bins would keep.

    >>> sampling_weights(np.array([1, 1, 30]), np.array(["a", "a", "a"]), 1.0).round(3).tolist()
    [0.25, 0.25, 0.5]
    >>> sampling_weights(np.array([1, 1, 30]), np.array(["a", "b", "a"]), 1.0).round(3).tolist()
    [0.333, 0.333, 0.333]
    >>> sampling_weights(np.array([1, 2, 30]), np.array(["a", "a", "a"]), 0.0).round(3).tolist()
    [0.333, 0.333, 0.333]
    """
    bins = np.minimum(ages, 80) // bin_years
    keys = np.char.add(np.char.add(datasets.astype(str), ":"), bins.astype(str))
    _, inverse, counts = np.unique(keys, return_inverse=True, return_counts=True)
    weights = counts[inverse].astype(np.float64) ** -balance
    return weights / weights.sum()


# --------------------------------------------------------------------------- augmentation


def warp(x: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
    """A float NCHW batch moved by the affine ``theta`` ``(N, 2, 3)``, which maps each output
    position to the input's (both in -1..1): bilinear, the edge pixels repeated outside."""
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)


def augment(chips: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Random mirror, small similarity transform, brightness/contrast and gray, on a
    uint8 NHWC batch; returns float NHWC in 0..255 (what ``ChipInput`` accepts). The draws
    come from ``generator`` on the CPU whatever the batch's device, so a run on a GPU sees
    the same augmentations as on a CPU."""
    n = chips.shape[0]
    x = chips.permute(0, 3, 1, 2).float()
    rand = lambda *shape: torch.rand(*shape, generator=generator).to(x.device)  # noqa: E731
    angle = (rand(n) - 0.5) * math.radians(20)
    scale = 1.0 + (rand(n) - 0.5) * 0.16
    flip = torch.where(rand(n) < 0.5, -1.0, 1.0)
    shift = (rand(n, 2) - 0.5) * 0.10
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    theta = torch.stack(
        [torch.stack([cos * flip, -sin, shift[:, 0]], 1), torch.stack([sin * flip, cos, shift[:, 1]], 1)], 1
    )
    x = warp(x, theta)
    brightness = 1.0 + (rand(n, 1, 1, 1) - 0.5) * 0.4
    contrast = 1.0 + (rand(n, 1, 1, 1) - 0.5) * 0.4
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    x = (x - mean) * contrast + mean * brightness
    gray = rand(n) < 0.1
    if gray.any():
        x[gray] = x[gray].mean(dim=1, keepdim=True).expand(-1, 3, -1, -1)
    return x.clamp(0, 255).permute(0, 2, 3, 1)


#: Sepia toning (the usual matrix), rows are output R, G, B.
_SEPIA = torch.tensor([[0.393, 0.769, 0.189], [0.349, 0.686, 0.168], [0.272, 0.534, 0.131]])


def degrade(chips: torch.Tensor, share: float, generator: torch.Generator) -> torch.Tensor:
    """Give ``share`` of a float NHWC batch (0..255) one fault of another camera or era,
    drawn evenly: JPEG at quality 8-40, Gaussian blur (sigma 0.6-2), a low-resolution
    original (downscaled to 25-60% and back), sensor noise, sepia, or a colour cast.
    Scanned prints, old phones and web thumbnails look like these; UTKFace mostly does not.

    >>> g = torch.Generator().manual_seed(0)
    >>> x = torch.rand(8, 32, 32, 3, generator=g) * 255
    >>> bool((degrade(x, 1.0, g) != x).any(dim=(1, 2, 3)).all()), bool((degrade(x, 0.0, g) == x).all())
    (True, True)
    """
    if share <= 0:
        return chips
    n = chips.shape[0]
    rand = lambda *shape: torch.rand(*shape, generator=generator)  # noqa: E731
    chosen = (rand(n) < share).nonzero().flatten().tolist()
    kinds = (rand(n) * 6).long().tolist()
    out = chips.clone()
    side = chips.shape[1]
    for i in chosen:
        x = out[i].permute(2, 0, 1)[None]  # 1CHW
        kind = kinds[i]
        if kind == 0:  # JPEG blocking, through Pillow: the real codec, not an imitation
            quality = int(8 + rand(1).item() * 32)
            buffer = io.BytesIO()
            Image.fromarray(out[i].clamp(0, 255).round().byte().cpu().numpy()).save(buffer, "JPEG", quality=quality)
            out[i] = torch.from_numpy(np.asarray(Image.open(buffer), dtype=np.float32).copy()).to(out.device)
            continue
        if kind == 1:  # blur
            sigma = 0.6 + rand(1).item() * 1.4
            radius = int(math.ceil(2 * sigma))
            taps = torch.exp(-0.5 * (torch.arange(-radius, radius + 1, dtype=torch.float32, device=x.device) / sigma) ** 2)
            taps = taps / taps.sum()
            x = F.pad(x, (radius, radius, radius, radius), mode="replicate")
            x = F.conv2d(x, taps.view(1, 1, 1, -1).expand(3, 1, 1, -1), groups=3)
            x = F.conv2d(x, taps.view(1, 1, -1, 1).expand(3, 1, -1, 1), groups=3)
        elif kind == 2:  # low resolution
            small = max(8, int(side * (0.25 + rand(1).item() * 0.35)))
            x = F.interpolate(x, size=(small, small), mode="area")
            x = F.interpolate(x, size=(side, side), mode="bilinear", align_corners=False)
        elif kind == 3:  # sensor noise
            x = x + torch.randn(x.shape, generator=generator).to(x.device) * (3 + rand(1).item() * 12)
        elif kind == 4:  # sepia, as old prints
            x = torch.einsum("oc,nchw->nohw", _SEPIA.to(x.device), x)
        else:  # colour cast: one gain per channel
            x = x * (0.8 + rand(1, 3, 1, 1).to(x.device) * 0.4)
        out[i] = x[0].clamp(0, 255).permute(1, 2, 0)
    return out


def old_print(chips: torch.Tensor, share: float, generator: torch.Generator) -> torch.Tensor:
    """Make ``share`` of a float NHWC batch (0..255) into an old print, scanned: grey, or
    sepia half the time; its contrast cut to 50-80% about a middle 0-20 levels lighter (a
    print fades toward its paper); film grain (one draw per pixel, all channels alike, sigma
    2-8 levels). A share of 0 draws nothing, so runs without it are unchanged.

    >>> g = torch.Generator().manual_seed(0)
    >>> x = torch.rand(8, 16, 16, 3, generator=g) * 255
    >>> y = old_print(x, 1.0, g)
    >>> bool((y.std(dim=(1, 2)).mean() < x.std(dim=(1, 2)).mean())), bool((old_print(x, 0.0, g) == x).all())
    (True, True)
    """
    if share <= 0:
        return chips
    n = chips.shape[0]
    rand = lambda *shape: torch.rand(*shape, generator=generator).to(chips.device)  # noqa: E731
    chosen = rand(n) < share
    grey = (chips * torch.tensor([0.299, 0.587, 0.114], device=chips.device)).sum(dim=3, keepdim=True).expand_as(chips)
    sepia = torch.einsum("oc,nhwc->nhwo", _SEPIA.to(chips.device), grey)
    toned = torch.where((rand(n) < 0.5).view(n, 1, 1, 1), sepia, grey)
    contrast = (0.5 + rand(n) * 0.3).view(n, 1, 1, 1)
    lighter = (rand(n) * 20.0).view(n, 1, 1, 1)
    grain = torch.randn(chips.shape[:3], generator=generator).to(chips.device)[..., None] * (2 + rand(n) * 6).view(n, 1, 1, 1)
    printed = ((toned - 128.0) * contrast + 128.0 + lighter + grain).clamp(0, 255)
    return torch.where(chosen.view(n, 1, 1, 1), printed, chips)


def swap_surroundings(chips: torch.Tensor, share: float, generator: torch.Generator) -> torch.Tensor:
    """Give ``share`` of a float NHWC batch (0..255) another chip's surroundings: each
    chosen chip keeps an oval around its face (centre within 4% of a point 2% below the chip's middle,
    half widths 33-43% and 42-50% of the side, a soft edge) and takes the rest from the
    chip a random number of places further along the batch. The draws come from
    ``generator`` on the CPU, as :func:`augment`'s do.

    >>> g = torch.Generator().manual_seed(0)
    >>> x = torch.rand(4, 32, 32, 3, generator=g) * 255
    >>> y = swap_surroundings(x, 1.0, g)
    >>> bool(torch.allclose(y[:, 16, 16], x[:, 16, 16])), bool((y[:, 0, 0] != x[:, 0, 0]).all())
    (True, True)
    >>> bool((swap_surroundings(x, 0.0, g) == x).all())
    True
    """
    if share <= 0 or chips.shape[0] < 2:
        return chips
    n, side = chips.shape[0], chips.shape[1]
    rand = lambda *shape: torch.rand(*shape, generator=generator).to(chips.device)  # noqa: E731
    chosen = rand(n) < share
    offset = int(torch.randint(1, n, (1,), generator=generator))
    centre = torch.tensor([0.5, 0.52], device=chips.device) + (rand(n, 2) - 0.5) * 0.08
    half_width, half_height = 0.33 + rand(n) * 0.10, 0.42 + rand(n) * 0.08
    keep = soft_ovals(side, centre, half_width, half_height)
    keep = torch.where(chosen[:, None, None], keep, torch.ones_like(keep))[..., None]
    return chips * keep + torch.roll(chips, offset, dims=0) * (1.0 - keep)


# --------------------------------------------------------------------------- loss


def soft_labels(ages: torch.Tensor, sigma: float) -> torch.Tensor:
    """Gaussian label distributions over ``NUM_AGES`` whole ages.

    >>> soft_labels(torch.tensor([30]), 2.0)[0].argmax().item()
    30
    >>> round(soft_labels(torch.tensor([30]), 2.0).sum().item(), 4)
    1.0
    """
    bins = torch.arange(NUM_AGES, device=ages.device, dtype=torch.float32)
    target = ages.clamp(max=NUM_AGES - 1).float()[:, None]
    logits = -0.5 * ((bins[None, :] - target) / sigma) ** 2
    return torch.softmax(logits, dim=1)


def age_loss(
    logits: torch.Tensor, ages: torch.Tensor, sigma: float = 2.0, l1_weight: float = 0.05,
    teacher: torch.Tensor | None = None, teacher_weight: float | torch.Tensor = 0.5,
) -> torch.Tensor:
    """Soft-label cross-entropy plus an L1 penalty on the expected age; with ``teacher``
    probabilities, the target is ``teacher_weight`` of them and the rest the label's
    (``teacher_weight`` may be one share per chip, ``(N,)``).

    >>> logits = torch.zeros(2, NUM_AGES); logits[0, 20] = logits[1, 60] = 10.0
    >>> good = age_loss(logits, torch.tensor([20, 60])); bad = age_loss(logits, torch.tensor([60, 20]))
    >>> bool(good < bad)
    True
    >>> agrees = soft_labels(torch.tensor([20, 60]), 2.0)
    >>> bool(age_loss(logits, torch.tensor([40, 40]), teacher=agrees, teacher_weight=1.0, l1_weight=0.0)
    ...      < age_loss(logits, torch.tensor([40, 40]), l1_weight=0.0))
    True
    """
    log_probs = F.log_softmax(logits, dim=1)
    target = soft_labels(ages, sigma)
    if teacher is not None:
        share = torch.as_tensor(teacher_weight, dtype=target.dtype, device=target.device).reshape(-1, 1)
        target = (1.0 - share) * target + share * teacher
    ce = -(target * log_probs).sum(dim=1).mean()
    expected = log_probs.exp() @ torch.arange(NUM_AGES, device=logits.device, dtype=torch.float32)
    return ce + l1_weight * (expected - ages.clamp(max=NUM_AGES - 1).float()).abs().mean()


def fault_consistency(faulted_logits: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
    """Years between the expected age of each chip (held fixed: no gradient flows into it)
    and that of the same chip given another fault, averaged over chips. Only the answer is
    held in place: the faulted view's distribution may widen (a faulted face may be less
    sure), but not drift toward the ages the network falls back on when unsure.

    >>> p = -0.5 * ((torch.arange(NUM_AGES)[None] - 30.0) / 2.0) ** 2  # about 30, give or take 2
    >>> float(fault_consistency(p, p))
    0.0
    >>> wider, older = p / 2, p.roll(3, dims=1)
    >>> round(float(fault_consistency(wider, p)), 2), round(float(fault_consistency(older, p)), 2)
    (0.0, 3.0)
    """
    ages = torch.arange(NUM_AGES, device=logits.device, dtype=torch.float32)
    own = torch.softmax(logits.detach(), dim=1) @ ages
    return (torch.softmax(faulted_logits, dim=1) @ ages - own).abs().mean()


# --------------------------------------------------------------------------- loop


def predict_probabilities(model: AgeModel, chips: np.ndarray, device: torch.device, batch: int = 256) -> np.ndarray:
    """Age probabilities for uint8 chips, in evaluation mode."""
    model.eval()
    out = []
    with torch.no_grad():
        for start in range(0, len(chips), batch):
            x = torch.from_numpy(chips[start : start + batch]).to(device)
            out.append(model.probabilities(x).cpu().numpy())
    return np.concatenate(out) if out else np.zeros((0, NUM_AGES), np.float32)


def quick_metrics(probs: np.ndarray, ages: np.ndarray, groups: AgeGroups) -> dict:
    decoded = decode_ages(probs, groups)
    return {
        "mae": float(np.abs(decoded.age - ages).mean()),
        "group_accuracy": float((decoded.group_index == groups.index_of(ages)).mean()),
    }


#: ``--teacher pretrained``: the model's own pretrained network, before any fine-tuning.
PRETRAINED_TEACHER = "pretrained"


def teacher_probabilities(
    config: TrainConfig, out: Path, student: AgeModel, device: torch.device, train_chips: int
) -> np.ndarray | None:
    """The teacher's age distributions for every training chip, computed once and kept in
    the run folder (for resuming): an exported model through ONNX Runtime at its own chip
    size, or, for ``pretrained``, the student's network as it was before fine-tuning (what
    it knew from its own, much larger training set: distilling it keeps that knowledge
    from being overwritten by one dataset's look)."""
    if not config.teacher:
        return None
    cache = out / "teacher-train.npy"
    if cache.exists():
        probs = np.load(cache)
        if len(probs) != train_chips:  # one row per training chip, in manifest order
            raise DataError(f"{cache}: holds the teacher's estimates of {len(probs)} training chips, but "
                            f"{config.data} now has {train_chips}; the prepared data changed since this run "
                            "began: start a new --out folder")
        return probs
    if config.teacher == PRETRAINED_TEACHER:
        chips = load_split(Path(config.data), "train", student.spec.input_size, config.limit, config.datasets).chips
        if student.spec.options.get("face_only"):
            # the pretrained network knew ages from whole chips, not from the face oval alone
            student = create_model(config.model, input_size=student.spec.input_size, crop=student.spec.crop).to(device)
        probs = predict_probabilities(student, chips, device).astype(np.float32)
    else:
        from agedetect.inference import AgeEstimator

        estimator = AgeEstimator(config.teacher)
        chips = load_split(Path(config.data), "train", estimator.input_size, config.limit, config.datasets).chips
        probs = np.concatenate(
            [estimator.chip_probabilities(chips[start : start + 512]) for start in range(0, len(chips), 512)]
        ).astype(np.float32)
    probs /= probs.sum(axis=1, keepdims=True)
    if probs.shape[1] != NUM_AGES:
        raise DataError(f"{config.teacher}: predicts {probs.shape[1]} age bins, the student {NUM_AGES}")
    _atomic_save_array(probs, cache)
    return probs


def teacher_shares(teacher: np.ndarray, ages: np.ndarray, weight: float, gate: float | None) -> np.ndarray:
    """Each training chip's share of the teacher in its target: ``weight``, faded by a
    Gaussian of ``gate`` years in the gap between the teacher's median estimate and the
    label. The pretrained network is a good teacher where it is right and a source of its
    own bias where it is not (it estimates All-Age-Faces' over-50s 7-10 years young):
    gating keeps the first and drops the second.

    >>> t = np.zeros((2, NUM_AGES), np.float32); t[0, 30] = t[1, 50] = 1.0
    >>> teacher_shares(t, np.array([30, 40]), 0.5, 5.0).astype(float).round(3).tolist()
    [0.5, 0.068]
    >>> teacher_shares(t, np.array([30, 40]), 0.5, None).tolist()
    [0.5, 0.5]
    """
    if gate is None:
        return np.full(len(ages), weight, np.float32)
    median = (np.cumsum(teacher, axis=1) < 0.5).sum(axis=1)
    gap = median - np.minimum(ages, NUM_AGES - 1)
    return (weight * np.exp(-0.5 * (gap / gate) ** 2)).astype(np.float32)


def debias_teacher(teacher: np.ndarray, ages: np.ndarray, datasets: np.ndarray, smooth: float = 3.0) -> np.ndarray:
    """The teacher's distributions with its mean error at each chip's true age taken out.

    The pretrained network reads 13-17-year-olds about 5 years too old and All-Age-Faces'
    over-50s 7-10 years too young; half a target taken from it passes that on. Here each chip's
    distribution is moved along the ages by minus the teacher's mean error (expected age -
    label) over the chips of the same dataset and about the same true age (a Gaussian of
    ``smooth`` years), so what is left is the teacher's view of how this face differs from
    others of its age.

    >>> t = np.zeros((4, NUM_AGES), np.float32); t[[0, 1], 20] = 1.0; t[[2, 3], 62] = 1.0
    >>> out = debias_teacher(t, np.array([15, 15, 60, 60]), np.array(["a"] * 4))
    >>> (out @ np.arange(NUM_AGES)).round(1).tolist()
    [15.0, 15.0, 60.0, 60.0]
    >>> bool(np.allclose(out.sum(axis=1), 1.0))
    True
    """
    bins = np.arange(NUM_AGES, dtype=np.float64)
    expected = teacher.astype(np.float64) @ bins
    labels = np.minimum(ages, NUM_AGES - 1).astype(np.float64)
    shift = np.zeros(len(ages))
    for dataset in np.unique(datasets):
        mine = datasets == dataset
        kernel = np.exp(-0.5 * ((bins[:, None] - labels[mine][None, :]) / smooth) ** 2)  # (age, chip)
        error_at_age = kernel @ (expected[mine] - labels[mine]) / np.maximum(kernel.sum(axis=1), 1e-12)
        shift[mine] = error_at_age[labels[mine].astype(np.int64)]
    # p'(k) = p(k + shift), linearly interpolated between whole ages; mass moved past either
    # end is dropped and the rest renormalised
    position = bins[None, :] + shift[:, None]
    low = np.floor(position).astype(np.int64)
    frac = position - low
    rows = np.arange(len(teacher))[:, None]

    def at(index: np.ndarray) -> np.ndarray:
        inside = (index >= 0) & (index < NUM_AGES)
        return np.where(inside, teacher[rows, np.clip(index, 0, NUM_AGES - 1)], 0.0)

    moved = (1 - frac) * at(low) + frac * at(low + 1)
    return (moved / np.maximum(moved.sum(axis=1, keepdims=True), 1e-12)).astype(np.float32)


def _atomic_save_array(array: np.ndarray, path: Path) -> None:
    tmp = path.with_suffix(".tmp.npy")
    np.save(tmp, array)
    tmp.replace(path)


def _param_groups(model: AgeModel, lr: float, weight_decay: float, body_lr_scale: float | None = None) -> list[dict]:
    """Pretrained layers learn slower than the new head, unless told otherwise: 0.3 x its
    rate for ``final`` (0.1 x cost it 0.15-0.2 years of validation MAE), 1 x for models
    trained from scratch (``transfer``'s pretrained layers are frozen)."""
    head, body = [], []
    for name, parameter in model.named_parameters():
        if not parameter.requires_grad:
            continue
        (head if name.startswith("network.head") else body).append(parameter)
    if body_lr_scale is None:
        body_lr_scale = 0.3 if model.spec.name == "final" else 1.0
    return [
        {"params": body, "lr": lr * body_lr_scale, "weight_decay": weight_decay},
        {"params": head, "lr": lr, "weight_decay": weight_decay},
    ]


def train(config: TrainConfig, progress: bool = True) -> Path:
    """Train (or resume) one run; returns the path of the best checkpoint."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    device = resolve_device(config.device)
    if config.threads:
        torch.set_num_threads(config.threads)
    seed_everything(config.seed)
    torch.use_deterministic_algorithms(True, warn_only=True)

    kwargs = {key: value for key in ("input_size", "crop") if (value := getattr(config, key))}
    if config.face_only:
        kwargs["face_only"] = True
    if config.network_side is not None:
        kwargs["network_side"] = config.network_side
    if config.tune_levels:
        kwargs["tune_levels"] = config.tune_levels
    model = create_model(config.model, **kwargs).to(device)
    spec = model.spec
    groups = AgeGroups.from_dict(spec.groups)
    data_dir = Path(config.data)
    train_split = load_split(data_dir, "train", spec.input_size, config.limit, config.datasets)
    val_split = load_split(data_dir, "val", spec.input_size, config.limit, config.datasets)
    weights = (
        torch.from_numpy(sampling_weights(train_split.ages, train_split.datasets, config.balance))
        if config.balance > 0 else None
    )

    optimizer = torch.optim.AdamW(_param_groups(model, config.lr, config.weight_decay, config.body_lr_scale))
    steps_per_epoch = max(1, math.ceil(len(train_split.ages) / config.batch_size))
    total = steps_per_epoch * (config.schedule_epochs or config.epochs)
    warmup = min(steps_per_epoch, total // 10 + 1)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: min(1.0, (step + 1) / warmup) * 0.5 * (1 + math.cos(math.pi * min(step, total) / total))
    )
    # The averaged weights are what gets validated, saved and exported.
    averaged = (
        torch.optim.swa_utils.AveragedModel(model, multi_avg_fn=torch.optim.swa_utils.get_ema_multi_avg_fn(config.ema))
        if config.ema else None
    )
    teacher = teacher_probabilities(config, out, model, device, len(train_split.ages))
    if teacher is not None and config.teacher_debias:
        teacher = debias_teacher(teacher, train_split.ages, train_split.datasets)
    shares = (
        teacher_shares(teacher, train_split.ages, config.teacher_weight, config.teacher_gate)
        if teacher is not None else None
    )
    start_epoch, best_mae, history = 0, float("inf"), []
    last = out / "last.pt"
    if last.exists():
        state = torch.load(last, map_location=device, weights_only=False)
        # Settings added after a run was saved take their defaults, which is what it ran with.
        defaults = {f.name: f.default for f in dataclasses.fields(TrainConfig) if f.default is not dataclasses.MISSING}
        if {**defaults, **state["config"]} != config.to_dict():
            raise DataError(f"{last}: was made with other settings; use a new --out folder to start afresh")
        model.load_state_dict(state["training_model"] if averaged else state["model"])
        if averaged:
            averaged.load_state_dict(state["averaged"])
        optimizer.load_state_dict(state["optimizer"])
        schedule.load_state_dict(state["schedule"])
        start_epoch, best_mae, history = state["epoch"], state["best_mae"], state["history"]
        torch.set_rng_state(state["rng"])
    (out / "config.json").write_text(json.dumps(config.to_dict(), indent=2) + "\n")

    generator = torch.Generator().manual_seed(config.seed)
    for epoch in range(start_epoch, config.epochs):
        generator.manual_seed(config.seed * 1000 + epoch)  # resumed runs see the same batches
        model.train()
        order = (
            torch.multinomial(weights, len(train_split.ages), replacement=True, generator=generator)
            if weights is not None else torch.randperm(len(train_split.ages), generator=generator)
        )
        started, running = time.perf_counter(), 0.0
        with Progress(
            TextColumn(f"epoch {epoch + 1}/{config.epochs}"), BarColumn(), MofNCompleteColumn(),
            TextColumn("loss {task.fields[loss]:.3f}"), TimeRemainingColumn(),
            disable=not progress, transient=True,
        ) as bar:
            task = bar.add_task("train", total=steps_per_epoch, loss=float("nan"))
            for step in range(steps_per_epoch):
                index = order[step * config.batch_size : (step + 1) * config.batch_size]
                chips = torch.from_numpy(train_split.chips[index.numpy()]).to(device)
                ages = torch.from_numpy(train_split.ages[index.numpy()]).to(device)
                targets = torch.from_numpy(teacher[index.numpy()]).to(device) if teacher is not None else None
                share = torch.from_numpy(shares[index.numpy()]).to(device) if shares is not None else 0.0
                inputs = swap_surroundings(augment(chips, generator), config.surroundings, generator)
                inputs = old_print(degrade(inputs, config.degrade, generator), config.old_prints, generator)
                if config.consistency > 0:
                    # one batch through the network, so both views share its normalisation statistics
                    faulted = degrade(inputs, 1.0, generator)
                    logits, faulted_logits = model(torch.cat([inputs, faulted])).chunk(2)
                    loss = age_loss(logits, ages, config.label_sigma, config.l1_weight, targets, share)
                    loss = loss + config.consistency * fault_consistency(faulted_logits, logits)
                else:
                    loss = age_loss(model(inputs), ages, config.label_sigma, config.l1_weight, targets, share)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                schedule.step()
                if averaged:
                    averaged.update_parameters(model)
                running = loss.item() if step == 0 else 0.9 * running + 0.1 * loss.item()
                bar.update(task, advance=1, loss=running)
        kept = averaged.module if averaged else model
        val = quick_metrics(predict_probabilities(kept, val_split.chips, device), val_split.ages, groups)
        record = {"epoch": epoch + 1, "train_loss": running, "val_mae": val["mae"],
                  "val_group_accuracy": val["group_accuracy"], "seconds": time.perf_counter() - started}
        history.append(record)
        with open(out / "history.jsonl", "a") as log:
            log.write(json.dumps(record) + "\n")
        if progress:
            print(f"epoch {epoch + 1}/{config.epochs}: loss {running:.3f}  val MAE {val['mae']:.2f}  "
                  f"group acc {val['group_accuracy']:.3f}  ({record['seconds']:.0f}s)", flush=True)
        checkpoint = {"spec": spec.to_dict(), "config": config.to_dict(), "model": kept.state_dict(),
                      "epoch": epoch + 1, "val": val, "history": history}
        if val["mae"] < best_mae:
            best_mae = val["mae"]
            _atomic_save(checkpoint, out / "best.pt")
        resume = {"optimizer": optimizer.state_dict(), "schedule": schedule.state_dict(),
                  "best_mae": best_mae, "rng": torch.get_rng_state()}
        if averaged:
            resume |= {"training_model": model.state_dict(), "averaged": averaged.state_dict()}
        _atomic_save({**checkpoint, **resume}, last)
    calibrate(out / "best.pt", val_split, device)
    return out / "best.pt"


def calibrate(checkpoint: Path, val: Split, device: torch.device) -> float:
    """Fit the softmax temperature on validation chips (lowest negative log-likelihood of
    the true age) and store it in the checkpoint's spec, so intervals mean what they say."""
    state = torch.load(checkpoint, map_location=device, weights_only=False)
    if "temperature" in state["spec"]["options"]:
        return state["spec"]["options"]["temperature"]
    model, _ = load_checkpoint(checkpoint)
    model.to(device)
    ages = np.clip(val.ages, 0, NUM_AGES - 1)
    model.eval()
    with torch.no_grad():  # the network runs once; only the temperature changes
        logits = torch.cat([model.view_logits(torch.from_numpy(val.chips[start : start + 256]).to(device))
                            for start in range(0, len(val.chips), 256)], dim=1)
    best_t, best_nll = 1.0, float("inf")
    for t in np.round(np.arange(0.6, 2.51, 0.1), 2):
        model.spec.options["temperature"] = float(t)
        probs = model.probabilities_from_logits(logits).cpu().numpy()
        # Smooth over +-1 year: the labels themselves are whole years and often rounded.
        window = probs[np.arange(len(ages)), ages] + 0.5 * (
            probs[np.arange(len(ages)), np.clip(ages - 1, 0, None)] + probs[np.arange(len(ages)), np.clip(ages + 1, None, NUM_AGES - 1)])
        nll = float(-np.log(np.clip(window, 1e-9, None)).mean())
        if nll < best_nll:
            best_t, best_nll = float(t), nll
    state["spec"]["options"]["temperature"] = best_t
    _atomic_save(state, checkpoint)
    return best_t


def _atomic_save(obj: dict, path: Path) -> None:
    tmp = path.with_suffix(".tmp")
    torch.save(obj, tmp)
    tmp.replace(path)


def load_checkpoint(path: str | Path) -> tuple[AgeModel, dict]:
    """A model and its checkpoint dict from ``best.pt``/``last.pt`` or a run folder."""
    path = Path(path)
    if path.is_dir():
        path = path / "best.pt"
    if not path.exists():
        raise DataError(f"{path}: no checkpoint here; train first (agedetect train ... --out RUN)")
    state = torch.load(path, map_location="cpu", weights_only=False)
    spec = ModelSpec(**{**state["spec"], "mean": tuple(state["spec"]["mean"]), "std": tuple(state["spec"]["std"])})
    model = model_from_spec(spec)
    model.load_state_dict(state["model"])
    model.eval()
    return model, state
