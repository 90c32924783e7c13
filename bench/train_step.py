"""How long one training step of each trainable model takes on this machine's CPU, and
what running the ResNet-10's stem outside oneDNN saves (agedetect.models.without_onednn).

    python bench/train_step.py [--batch 128] [--steps 4] [--threads 2]

Prints, per model, the median seconds of a forward and backward pass and an optimiser step
on a batch of random 64 px chips, and for the ResNet-10's stem alone the median forward
seconds with oneDNN's convolution and with PyTorch's own. Needs the ``train`` extra.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from agedetect.models import create_model, without_onednn


def median_seconds(step, steps: int) -> float:
    step()  # the first call sets up kernels and caches
    times = []
    for _ in range(steps):
        started = time.perf_counter()
        step()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    chips = torch.randint(0, 256, (args.batch, 64, 64, 3), dtype=torch.uint8)
    ages = torch.randint(0, 100, (args.batch,))

    print(f"| model | training step, {args.batch} chips (s) |\n|---|---:|")
    for name in ("final", "descriptor", "descriptor_levels", "cnn"):
        model = create_model(name).train()
        optimiser = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], 1e-3)

        def step() -> None:
            loss = torch.nn.functional.cross_entropy(model(chips), ages)
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()

        print(f"| {name} | {median_seconds(step, args.steps):.2f} |")

    model = create_model("final").eval()
    stem_input = model.input(chips)
    print(f"\n| the ResNet-10's stem, forward, {args.batch} chips | seconds |\n|---|---:|")
    stem = model.network.stem
    for label, forward in (("oneDNN", lambda: stem(stem_input)),
                           ("PyTorch's own", lambda: without_onednn(stem, stem_input))):
        with torch.no_grad():
            print(f"| {label} | {median_seconds(forward, args.steps):.3f} |")


if __name__ == "__main__":
    main()
