"""The shipped model with one of its members replaced by a training run, scored without
retraining the others.

    python bench/swap_member.py --data runs/data --split val --member 2 --run runs/final-xl \
        [--share 0.4 --share 0.5] [--drop 0] [--model FILE] [--json FILE]

The shipped ONNX graph averages its members' probabilities; this reads each member's own
probabilities out of the graph (int8, one pass each, at its fitted temperature, as shipped),
and scores the graph's answer, each member alone, the run alone (one pass, at its fitted
temperature, in float32 as `agedetect train` left it) and the average with member
``--member`` (counted from 0, in the sidecar's order) replaced by the run at each ``--share``
(the others keep their shares relative to each other; ``--drop N`` leaves member N out of
them, to see whether the candidate needs it). A candidate for a member can so be
measured against the members the model ships, even when their training runs are not at
hand. Figures as bench/shift.py gives them, per dataset of ``--split``. Needs the ``train``
extra.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import torch

from agedetect.export import sidecar_path
from agedetect.inference import DEFAULT_MODEL
from agedetect.labels import AgeGroups
from agedetect.models import shares_of_options
from agedetect.train import load_checkpoint, load_split, predict_probabilities
from shift import report, score_answers


def member_outputs(model: onnx.ModelProto, members: int) -> list[str]:
    """The names of the tensors holding each member's probabilities: the inputs of the
    graph's weighted sum, in member order (``ExportWrapper`` adds ``share * p`` in turn), or,
    for members of equal shares, of the mean it takes over their stacked probabilities."""
    producers = {output: node for node in model.graph.node for output in node.output}
    terms, name = [], model.graph.output[0].name
    mean = producers.get(name)
    stacked = producers.get(mean.input[0]) if mean is not None and mean.op_type == "ReduceMean" else None
    if stacked is not None and stacked.op_type == "Concat":
        outputs = [producers[term].input[0] for term in stacked.input if producers[term].op_type == "Unsqueeze"]
        if len(outputs) != len(stacked.input):
            raise SystemExit(f"the graph's answer is not a mean of {members} members' probabilities")
        if len(outputs) != members:
            raise SystemExit(f"found {len(outputs)} averaged members in the graph, the sidecar lists {members}")
        return outputs
    while (node := producers.get(name)) is not None and node.op_type == "Add":
        name, last = node.input
        terms.append(last)
    terms.append(name)
    outputs = []
    for term in reversed(terms):
        node = producers[term]
        if node.op_type != "Mul":
            raise SystemExit(f"the graph's answer is not a weighted sum of {members} members' probabilities")
        outputs.append(next(i for i in node.input if i in producers and producers[i].op_type != "Constant"))
    if len(outputs) != members:
        raise SystemExit(f"found {len(outputs)} weighted members in the graph, the sidecar lists {members}")
    return outputs


def members_exposed(model: onnx.ModelProto, members: int) -> ort.InferenceSession:
    """A session on ``model`` that answers, after the graph's own answer, each member's
    probabilities (:func:`member_outputs`, added to ``model``'s outputs)."""
    for name in member_outputs(model, members):
        model.graph.output.append(onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None))
    return ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=Path("runs/data"), help="a folder made by `data prepare`")
    parser.add_argument("--split", default="val")
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL, help="an exported ensemble (default: the shipped one)")
    parser.add_argument("--member", type=int, required=True, help="which member the run replaces (from 0)")
    parser.add_argument("--run", type=Path, required=True, help="a run folder made by `agedetect train`")
    parser.add_argument("--share", type=float, action="append", default=[],
                        help="the run's share of the average (repeatable; default: the replaced member's)")
    parser.add_argument("--drop", type=int, action="append", default=[],
                        help="also leave this member out of the average (repeatable; from 0)")
    parser.add_argument("--json", type=Path, default=None, help="also write every figure here")
    args = parser.parse_args()

    sidecar = json.loads(sidecar_path(args.model).read_text())
    members = sidecar["members"]
    if not all(0 <= member < len(members) for member in (args.member, *args.drop)):
        raise SystemExit(f"--member and --drop count from 0 to {len(members) - 1}, the model's members")
    if args.member in args.drop or len(set(args.drop) | {args.member}) == len(members):
        raise SystemExit("--drop leaves out members beside the one replaced, and at least one of them stays")
    shares = np.array(shares_of_options(member["options"] for member in members))
    if not all(0 < share < 1 for share in args.share):
        raise SystemExit(f"--share takes shares between 0 and 1, got {args.share}")

    graph = onnx.load(str(args.model))
    session = members_exposed(graph, len(members))
    run_model, _ = load_checkpoint(args.run)
    run_model.spec.options["flip_average"] = False
    split = load_split(args.data, args.split, run_model.spec.input_size)
    if split.chips.shape[1] != sidecar["input_size"]:
        raise SystemExit(f"{args.run} reads {split.chips.shape[1]} px chips, the model {sidecar['input_size']} px")

    batches = [session.run(None, {graph.graph.input[0].name: split.chips[i : i + 256]})
               for i in range(0, len(split.chips), 256)]
    shipped, *parts = (np.concatenate([batch[k] for batch in batches]) for k in range(len(members) + 1))
    candidate = predict_probabilities(run_model, split.chips, torch.device("cpu"))
    answers = {"shipped": shipped}
    answers.update({f"member {i} ({m['name']}) alone": p for i, (m, p) in enumerate(zip(members, parts))})
    answers[f"{args.run.name} alone"] = candidate
    others = [i for i in range(len(members)) if i != args.member and i not in args.drop]
    rest = sum(shares[i] * parts[i] for i in others) / shares[others].sum()
    without = "".join(f", without member {i}" for i in sorted(set(args.drop)))
    for share in args.share or [float(shares[args.member])]:
        answers[f"member {args.member} replaced by {args.run.name} at {share:g}{without}"] = (
            (1 - share) * rest + share * candidate)

    groups = AgeGroups.from_dict(run_model.spec.groups)
    results = score_answers(answers, split.ages, split.datasets, groups, "all")
    report(results, f"{args.model} with member {args.member} replaced by {args.run}, on the {args.split} splits of "
                    f"{args.data}", args.json)


if __name__ == "__main__":
    main()
