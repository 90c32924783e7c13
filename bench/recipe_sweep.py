"""Train several recipes side by side, each on every dataset and on each dataset alone,
and score them all on every dataset's validation split: a quick way to choose the next
shipped recipe (on a GPU it takes minutes; on a 2-core CPU, hours).

    python bench/recipe_sweep.py --data runs/data --out runs/sweep --recipes RECIPES \\
        [--jobs 4] [--threads 2] [--json runs/sweep.json]

RECIPES is a text file, one recipe a line: a name, then options of ``agedetect train``
(``--epochs 12 --balance 0.5 ...``) or any other field of ``agedetect.train.TrainConfig``
(``--label-sigma 3``); ``#`` starts a comment. Every recipe is trained on all datasets
(``all``) and on each dataset alone, with ``--model final`` and the shipped member's
framing unless the line says otherwise. Runs already finished are scored, not retrained.

Figures are from the validation split (test stays for the recipe finally chosen),
one pass with no mirror (as the shipped model runs), temperature as each run fitted it:
MAE, bias, five-group accuracy, 13-17 bias, 80% interval coverage, and Challenge 25 at
the default risk cap. A run scored on a dataset it never saw is marked with ``*``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import multiprocessing
import time
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from pathlib import Path

import numpy as np
import torch

from agedetect.data import load_manifest
from agedetect.labels import AgeGroups
from agedetect.models import PRETRAINED_CHIP_SIZE
from agedetect.train import (
    TrainConfig, load_checkpoint, load_split, predict_probabilities, resolve_device, train,
)
from recipes import read_recipe_lines
from shift import score as shift_figures

ALL = "all"


def read_recipes(path: Path) -> dict[str, dict]:
    """``name --option value ...`` lines -> {name: TrainConfig keyword arguments}."""
    fields = {field.name: field for field in dataclasses.fields(TrainConfig)}
    recipes: dict[str, dict] = {}
    for recipe in read_recipe_lines(path):
        settings: dict = {}
        for flag, value in recipe.options:
            key = flag.removeprefix("--").replace("-", "_")
            if key not in fields or key in ("data", "out", "datasets"):
                raise SystemExit(f"{path}:{recipe.line}: {flag!r} is not a training option")
            kind = str(fields[key].type)
            settings[key] = int(value) if kind.startswith("int") else float(value) if kind.startswith("float") else value
        recipes[recipe.name] = settings
    return recipes


def run_one(config: TrainConfig) -> str:
    train(config, progress=False)
    return config.out


def score(run: Path, data: Path, datasets: list[str], device: torch.device, groups: AgeGroups) -> dict:
    model, state = load_checkpoint(run / "best.pt")
    model.spec.options["flip_average"] = False  # the shipped model runs one pass
    model.to(device)
    figures = {"best_epoch": state["epoch"], "temperature": model.spec.options.get("temperature")}
    for dataset in datasets:
        split = load_split(data, "val", model.spec.input_size, datasets=[dataset])
        probabilities = predict_probabilities(model, split.chips, device)
        every = shift_figures(probabilities, split.ages.astype(np.float64), groups)
        figures[dataset] = {key: every[key] for key in ("mae", "bias", "group_accuracy", "interval_coverage",
                                                        "teen_bias", "teens_passed", "adults_referred")}
    return figures


def print_table(results: dict, datasets: list[str]) -> None:
    print("| recipe | trained on | scored on | MAE | bias | 5-group acc. | 13-17 bias | covers | "
          "13-17 passing | adults referred | best epoch |")
    print("|---" * 11 + "|")
    for key, figures in results.items():
        recipe, trained_on = key.rsplit("/", 1)
        for dataset in datasets:
            f = figures[dataset]
            unseen = "*" if trained_on not in (ALL, dataset) else ""
            teen = "n/a" if f["teen_bias"] is None else f"{f['teen_bias']:+.1f}"
            print(f"| {recipe} | {trained_on} | {dataset}{unseen} | {f['mae']:.2f} | {f['bias']:+.2f} | "
                  f"{f['group_accuracy']:.1%} | {teen} | {f['interval_coverage']:.1%} | {f['teens_passed']:.1%} | "
                  f"{f['adults_referred']:.1%} | {figures['best_epoch']} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True, help="folder of the run folders")
    parser.add_argument("--recipes", type=Path, required=True)
    parser.add_argument("--only", nargs="*", help="train these recipes only (default: every one)")
    parser.add_argument("--jobs", type=int, default=1, help="runs trained at once")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads per run")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--limit", type=int, default=None, help="first N chips of each split (smoke tests)")
    parser.add_argument("--stop-after", type=float, default=None,
                        help="seconds after which no new run starts (runs under way finish)")
    parser.add_argument("--json", type=Path, help="write every figure here (after each run)")
    args = parser.parse_args()

    recipes = read_recipes(args.recipes)
    if args.only:
        recipes = {name: recipes[name] for name in args.only}
    datasets = sorted({row.dataset for row in load_manifest(args.data, split="val")})
    configs, names = [], {}
    for name, settings in recipes.items():
        for trained_on in [ALL, *datasets]:
            names[str(args.out / f"{name}-{trained_on}")] = f"{name}/{trained_on}"
            configs.append(TrainConfig(
                **{"model": "final", "seed": 4, **settings}, data=str(args.data),
                out=str(args.out / f"{name}-{trained_on}"), device=args.device, threads=args.threads,
                limit=args.limit, datasets=None if trained_on == ALL else (trained_on,),
            ))
    # Decode every split once, here, so the runs find the chips cached instead of racing to decode them.
    for config in configs[: 1 + len(datasets)]:
        size = config.input_size or PRETRAINED_CHIP_SIZE
        for split in ("train", "val"):
            load_split(args.data, split, size, args.limit, config.datasets)

    device = resolve_device(args.device)
    groups = AgeGroups.default()
    results: dict = json.loads(args.json.read_text()) if args.json and args.json.exists() else {}
    started = time.monotonic()
    context = multiprocessing.get_context("spawn")  # CUDA does not survive fork
    with ProcessPoolExecutor(max_workers=args.jobs, mp_context=context) as pool:
        pending, queue = set(), list(configs)
        while queue or pending:
            while queue and len(pending) < args.jobs:
                if args.stop_after is not None and time.monotonic() - started > args.stop_after:
                    print(f"--stop-after: {len(queue)} runs not started", flush=True)
                    queue.clear()
                    break
                pending.add(pool.submit(run_one, queue.pop(0)))
            if not pending:
                break
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                run = future.result()
                results[names[run]] = score(Path(run), args.data, datasets, device, groups)
                print(f"{Path(run).name}: done at {time.monotonic() - started:.0f}s", flush=True)
                if args.json:
                    args.json.write_text(json.dumps(results, indent=1) + "\n")
    print_table(results, datasets)


if __name__ == "__main__":
    main()
