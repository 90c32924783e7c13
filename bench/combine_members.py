"""Several runs combined two ways: their answers averaged (an ensemble, one network per
member per face) or their weights averaged (a "model soup", one network per face).

    python bench/combine_members.py --data runs/data --split val \
        --run runs/final-c --run runs/final-d --json runs/members-final.json
    python bench/combine_members.py --data runs/data --split val --soup \
        --run runs/shift/gated-utkface --run runs/soup/gated-utkface-s5 --run runs/soup/gated-utkface-s6
    python bench/combine_members.py --data runs/data --split val \
        --run runs/final-c --run runs/final-g --run runs/final-x --without-last --last-share 0.25

Each ``--run`` is a folder made by ``agedetect train --model final`` (all from the same
pretrained network, so their weights can be averaged), scored one pass per face at its own
fitted temperature, as ``agedetect export --no-mirror`` ships it; the ensemble averages the
members' probabilities as the exported graph does (``--last-share S``: the last run weighed S
and the others the rest, as ``agedetect export --member-weights`` weighs them; ``--without-last``:
the average without the last run, to show what it adds), and the soup (``--soup``) runs one
network whose weights are the members' mean, at their mean temperature. ``--views`` also
scores the ensemble reading more than the chip itself, each view's probabilities averaged
as the mirror pass is (:data:`VIEW_SETS`: the mirror image, as shipped; and with it chips
zoomed 5% in and out, or shifted 4% of a side each way). Every dataset of
``--split`` is scored with the figures of ``bench/shift.py``; a dataset none of the runs
was trained on is in bold. Needs the ``train`` extra (PyTorch).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from agedetect.labels import AgeGroups
from agedetect.train import load_checkpoint, load_split, predict_probabilities, warp
from shift import report, score_answers


#: Test-time views (``--views``): zoom (>1 enlarges the face), shift (share of the chip's
#: half-side, + moves the face left / up) and mirror, each a view every member reads.
VIEWS = {
    "chip": {}, "mirror": {"mirror": True},
    "zoom in": {"zoom": 1.05}, "zoom out": {"zoom": 0.95},
    "zoom in, mirrored": {"zoom": 1.05, "mirror": True}, "zoom out, mirrored": {"zoom": 0.95, "mirror": True},
    "left": {"shift": (0.04, 0.0)}, "right": {"shift": (-0.04, 0.0)},
    "up": {"shift": (0.0, 0.04)}, "down": {"shift": (0.0, -0.04)},
}
VIEW_SETS = {
    "chip and mirror (shipped)": ("chip", "mirror"),
    "and zoomed 5% in and out": ("chip", "mirror", "zoom in", "zoom out"),
    "and zoomed, mirrored too": ("chip", "mirror", "zoom in", "zoom out", "zoom in, mirrored", "zoom out, mirrored"),
    "and shifted 4% each way": ("chip", "mirror", "left", "right", "up", "down"),
}


def view(chips: np.ndarray, zoom: float = 1.0, shift: tuple[float, float] = (0.0, 0.0),
         mirror: bool = False) -> np.ndarray:
    """uint8 NHWC ``chips`` seen through one test-time view, moved as training's augmentation
    moves chips (:func:`agedetect.train.warp`)."""
    x = torch.from_numpy(chips).permute(0, 3, 1, 2).float()
    flip = -1.0 if mirror else 1.0
    theta = torch.tensor([[flip / zoom, 0.0, shift[0]], [0.0, 1.0 / zoom, shift[1]]]).expand(len(x), 2, 3)
    return warp(x, theta).round().clamp(0, 255).byte().permute(0, 2, 3, 1).numpy()


def average_weights(states: list[dict], shares: list[float] | None = None) -> dict:
    """The mean of several state dicts of one architecture, or their sum weighted by
    ``shares``; integer tensors (counters) are taken from the first."""
    def mix(name: str):
        if shares is None:
            return sum(state[name] for state in states) / len(states)
        return sum(share * state[name] for share, state in zip(shares, states, strict=True))

    return {name: mix(name) if value.is_floating_point() else value for name, value in states[0].items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=Path("runs/data"), help="a folder made by `data prepare`")
    parser.add_argument("--run", type=Path, action="append", required=True,
                        help="a run folder of `final` (repeatable; with --soup, all of `final`)")
    parser.add_argument("--soup", action="store_true", help="also average the runs' weights into one network")
    parser.add_argument("--views", action="store_true", help="also score the ensemble reading more views of each chip")
    parser.add_argument("--last-share", type=float, action="append", default=[],
                        help="also score the average with the last run given this share and the others the rest "
                             "equally, as `agedetect export --member-weights` weighs them (repeatable)")
    parser.add_argument("--without-last", action="store_true",
                        help="also score the average of every run but the last (what the last adds)")
    parser.add_argument("--split", default="val")
    parser.add_argument("--json", type=Path, default=None, help="also write every figure here")
    args = parser.parse_args()
    if not all(0 < share < 1 for share in args.last_share):
        raise SystemExit(f"--last-share takes shares between 0 and 1, got {args.last_share}")
    if len(args.run) < 2:
        raise SystemExit("give at least two --run folders to combine")

    loaded = [load_checkpoint(run) for run in args.run]
    trained_on = sorted({",".join(state["config"].get("datasets") or ["all"]) for _, state in loaded})
    trained_on = trained_on[0] if len(trained_on) == 1 else "mixed"
    model = loaded[0][0]
    split = load_split(args.data, args.split, model.spec.input_size)
    groups = AgeGroups.from_dict(model.spec.groups)
    answers = {}
    for run, (member, _) in zip(args.run, loaded):
        member.spec.options["flip_average"] = False  # one pass, as the shipped members run
        answers[run.name] = predict_probabilities(member, split.chips, torch.device("cpu"))
    answers["outputs averaged"] = np.mean([answers[run.name] for run in args.run], axis=0)
    last = args.run[-1].name
    others = np.mean([answers[run.name] for run in args.run[:-1]], axis=0)  # every run but the last, averaged
    if args.without_last and len(args.run) > 2:
        answers[f"outputs averaged, without {last}"] = others
    for share in args.last_share:
        answers[f"outputs averaged, {last} at {share:g}"] = (1 - share) * others + share * answers[last]
    if args.soup:
        model.load_state_dict(average_weights([member.state_dict() for member, _ in loaded]))
        model.spec.options["temperature"] = float(np.mean(
            [member.spec.options.get("temperature", 1.0) for member, _ in loaded]))
        answers["weights averaged"] = predict_probabilities(model, split.chips, torch.device("cpu"))
    if args.views:
        by_view = {name: np.mean([predict_probabilities(member, view(split.chips, **options), torch.device("cpu"))
                                  for member, _ in loaded], axis=0) for name, options in VIEWS.items()}
        for label, names in VIEW_SETS.items():
            answers[f"outputs averaged, {label}"] = np.mean([by_view[name] for name in names], axis=0)

    results = score_answers(answers, split.ages, split.datasets, groups, trained_on)
    report(results, f"{len(args.run)} runs combined, on the {args.split} splits of {args.data}", args.json)


if __name__ == "__main__":
    main()
