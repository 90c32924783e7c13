#!/usr/bin/env bash
# Leave-one-dataset-out: how far a model falls on photos unlike its training set, and
# what each idea of the training recipe does about it. Each recipe is trained on one
# dataset of the prepared folder (validation from the same dataset: nothing is tuned on
# the other) and scored on every dataset's test split. `python bench/shift.py` prints the
# table; docs/MODEL_CARD.md shows it. Run from the repository root after `data prepare`:
#
#     bash scripts/shift_runs.sh                       # DATA=runs/data EPOCHS=5
#     bash scripts/shift_runs.sh --only shipped-aaf    # one run
#
# Recipes are cumulative, so each row adds one idea to the row above it (`gated` fades the
# teacher's share on chips where its estimate strays from the label), except
# `surroundings`, which adds its idea to `native` (as the shipped members do), and
# `face-only`, which also adds its own to `native` (the network sees the face oval alone), and
# `debiased`, which adds to `native-distilled` the teacher's mean error at each age taken out, and
# `descriptor`, another network (dlib's face descriptor, frozen, an age head on it: the
# shipped model's third member) with `native`'s options. The first five
# read chips as agedetect did before 2026-11-30 (80 px, 90% centre crop); `native` and
# after read them in the pretrained network's own framing (the model's default: 64 px,
# the whole chip; agedetect.models.PRETRAINED_CHIP_SIZE). A run whose figures exist is
# skipped and one stopped part-way resumes, so the script can be stopped and started again.
set -euo pipefail
cd "$(dirname "$0")/.."
ONLY=""
if [ "${1:-}" = --only ]; then ONLY=${2:?--only needs RECIPE-DATASET}; fi
BIN=${BIN:-.venv/bin}
DATA=${DATA:-runs/data}
EPOCHS=${EPOCHS:-5}
OUT=${OUT:-runs/shift}
mkdir -p "$OUT"

# recipe trained-on options...
while read -r recipe trained_on options; do
  run="$OUT/$recipe-$trained_on"
  [ -n "$ONLY" ] && [ "$ONLY" != "$recipe-$trained_on" ] && continue
  [ -f "$run-test.json" ] && continue  # done in an earlier call
  model=(--model final)  # unless the recipe names its own
  [[ " $options " == *" --model "* ]] && model=()
  # shellcheck disable=SC2086  # options are words
  "$BIN/agedetect" train "${model[@]}" --data "$DATA" --datasets "$trained_on" --out "$run" \
    --epochs "$EPOCHS" --seed 4 $options
  "$BIN/agedetect" export "$run" --no-mirror --out "$run.onnx"
  "$BIN/agedetect" evaluate "$DATA" --split test --model "$run.onnx" --json --min-age 18 --buffer 7 > "$run-test.tmp.json"
  mv "$run-test.tmp.json" "$run-test.json"
done <<RECIPES
shipped utkface --input-size 80 --crop 0.9
distilled utkface --input-size 80 --crop 0.9 --balance 0.5 --degrade 0.3 --teacher pretrained --teacher-weight 0.3
shipped aaf --input-size 80 --crop 0.9
balanced utkface --input-size 80 --crop 0.9 --balance 0.5
degraded utkface --input-size 80 --crop 0.9 --balance 0.5 --degrade 0.3
native utkface --balance 0.5 --degrade 0.3
native aaf --balance 0.5 --degrade 0.3
native-distilled utkface --balance 0.5 --degrade 0.3 --teacher pretrained --teacher-weight 0.5
native-distilled aaf --balance 0.5 --degrade 0.3 --teacher pretrained --teacher-weight 0.5
gated utkface --balance 0.5 --degrade 0.3 --teacher pretrained --teacher-weight 0.5 --teacher-gate 5
gated aaf --balance 0.5 --degrade 0.3 --teacher pretrained --teacher-weight 0.5 --teacher-gate 5
surroundings utkface --balance 0.5 --degrade 0.3 --surroundings 0.5
surroundings aaf --balance 0.5 --degrade 0.3 --surroundings 0.5
face-only utkface --balance 0.5 --degrade 0.3 --face-only
face-only aaf --balance 0.5 --degrade 0.3 --face-only
debiased utkface --balance 0.5 --degrade 0.3 --teacher pretrained --teacher-weight 0.5 --teacher-debias
debiased aaf --balance 0.5 --degrade 0.3 --teacher pretrained --teacher-weight 0.5 --teacher-debias
descriptor utkface --model descriptor --balance 0.5 --degrade 0.3
descriptor aaf --model descriptor --balance 0.5 --degrade 0.3
RECIPES
