"""Put an exported model into the package, with the figures measured on it in its sidecar.

    python scripts/ship_model.py runs/final.onnx --metrics runs/final-test.json \
        --typical-error runs/final-val.json

Exporting the members again with ``--metrics`` would write the same bytes (the export is
deterministic, and the figures live in the sidecar, not in the graph) at the cost of a
second int8 calibration; this copies the file and records the figures as that export would.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

from agedetect.export import sidecar_path
from agedetect.inference import DEFAULT_MODEL, sha256_of


def ship(model: Path, metrics: dict, typical_error: dict, dest: Path = DEFAULT_MODEL) -> dict:
    """Copy ``model`` (and its sidecar) to ``dest``, the figures placed in the sidecar where
    `agedetect export --metrics --typical-error` places them: before its ``sha256``."""
    try:
        meta = json.loads(sidecar_path(model).read_text())
        digest = sha256_of(model)
    except (OSError, ValueError) as error:
        raise SystemExit(f"error: {model}: not an exported model with its sidecar ({error})") from None
    if meta.get("sha256") != digest:
        raise SystemExit(f"error: {model}: its sidecar's sha256 is not the file's; export it again")
    if "mae_by_age_band" not in typical_error:
        raise SystemExit("error: the typical error is not `agedetect evaluate --json` output (no mae_by_age_band)")
    figures = {"metrics": metrics, "typical_error": typical_error["mae_by_age_band"]}
    ordered: dict = {}
    for key, value in meta.items():
        if key == "sha256":
            ordered |= figures
        if key not in figures:
            ordered[key] = value
    shutil.copyfile(model, dest)
    sidecar_path(dest).write_text(json.dumps(ordered, indent=2) + "\n")
    return ordered


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model", type=Path, help="an exported model (FILE.onnx, FILE.json beside it)")
    parser.add_argument("--metrics", type=Path, required=True,
                        help="`agedetect evaluate --json` of it on the test split (the model card's figures)")
    parser.add_argument("--typical-error", type=Path, required=True,
                        help="`agedetect evaluate --json` of it on the validation split (`agedetect gap`'s typical error)")
    parser.add_argument("--out", type=Path, default=DEFAULT_MODEL, help="where to put it (default: the package's model)")
    args = parser.parse_args()
    try:
        metrics, typical = (json.loads(path.read_text()) for path in (args.metrics, args.typical_error))
    except (OSError, ValueError) as error:
        raise SystemExit(f"error: not a readable `agedetect evaluate --json` output ({error})") from None
    ship(args.model, metrics, typical, args.out)
    print(f"shipped {args.model} as {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
