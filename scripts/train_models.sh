#!/usr/bin/env bash
# Reproduces the shipped age model and the figures stored with it. Run from the repository
# root with ../shared beside it:
#
#     make model            # or: bash scripts/train_models.sh
#
# Outputs go to runs/ (ignored by git); the shipped model is copied into the package. The
# brief's baselines, the comparisons and benchmarks of docs/MODEL_CARD.md and the card
# itself follow with `make card` (scripts/card_runs.sh).
#
#     TRAIN=0 bash scripts/train_models.sh
#
# skips `data prepare` and training: the runs already in runs/ are exported, scored and
# shipped again (after a change to export, or to ship members an earlier run trained, put
# back in runs/, on this data prepare).
set -euo pipefail
cd "$(dirname "$0")/.."
# Every dataset in ../shared: UTKFace's chips and All-Age-Faces' photos (detected and
# aligned into UTKFace's framing), split per dataset.
SOURCES=${SOURCES:-../shared/data/utkface ../shared/data/aaf}
SEED=${SEED:-0}
# shellcheck source=scripts/recipe.sh
source scripts/recipe.sh

if [ "$TRAIN" = 1 ]; then
# shellcheck disable=SC2086  # SOURCES is a list of folders
"$BIN/agedetect" data prepare $SOURCES --out "$DATA" --seed "$SEED" --json > runs/prepare.json

# The final model averages four members. Two are the pretrained ResNet-10 fine-tuned, and
# differ in what they learn from: one keeps half of its target from the pretrained network's
# own estimates (--teacher pretrained), the other learns from the labels alone. Both read
# chips in the pretrained network's own framing (the model's default, 64 px, the whole chip;
# agedetect.models.PRETRAINED_CHIP_SIZE), with ages evened out and faults of other cameras:
# bench/shift.py measured each idea on the dataset a run never saw (docs/MODEL_CARD.md,
# "Photos unlike the training set"). The second also gives half its chips another chip's
# surroundings, so hair and background stop telling it an age: on faces moved to other
# surroundings it errs far less, on chips in their own about as much (bench/whole_photos.py;
# the card's "Whole photos"). The other two are age heads on dlib's face descriptor network,
# frozen, reading its descriptor and its last levels: it learnt faces from other people, for
# another task, and errs on other faces than the ResNet-10s do (bench/combine_members.py;
# the card's "A face descriptor as a member"). The heads read the levels too because the
# descriptor itself was taught to drop age (bench/descriptor_levels.py). The second head
# also learns with other surroundings, like runs/final-g: beside the first it reads whole
# photos better (the card's "Shares for photos unlike the training set").
# The ResNet-10s stop after 10 epochs of a 12-epoch schedule: run to 12, both were best on
# validation at the 10th (runs/final-c, runs/final-g at commit f7e09ea), so the 10th is the
# model and the last two epochs (10 minutes here) are not run.
train_runs <<RUNS
final final-c 10 64 1.0 1e-3 4 0.3 --schedule-epochs 12 --balance 0.5 --degrade 0.3 --teacher pretrained --teacher-weight 0.5
final final-g 10 64 1.0 1e-3 4 0.3 --schedule-epochs 12 --balance 0.5 --degrade 0.3 --surroundings 0.5
descriptor_levels final-x 10 64 1.0 1e-3 4 - --balance 0.5 --degrade 0.3
descriptor_levels final-xs 10 64 1.0 1e-3 4 - --balance 0.5 --degrade 0.3 --surroundings 0.5
RUNS
fi
# The final model (FINAL, SHARES, CALIBRATE: scripts/recipe.sh).
# shellcheck disable=SC2086  # FINAL is a list of run folders
"$BIN/agedetect" export $FINAL "${SHARES[@]}" --out runs/final.onnx "${CALIBRATE[@]}"
# The shipped model: typical errors from validation, reported figures from test.
"$BIN/agedetect" evaluate "$DATA" --split val --model runs/final.onnx --json --min-age 18 --buffer 7 > runs/final-val.json
"$BIN/agedetect" evaluate "$DATA" --split test --model runs/final.onnx --json --min-age 18 --buffer 7 \
  --report runs/final-report > runs/final-test.json
# The same file into the package, with those figures in its sidecar (exporting it again
# would write the same bytes, a second int8 calibration later).
"$BIN/python" scripts/ship_model.py runs/final.onnx --metrics runs/final-test.json --typical-error runs/final-val.json
write_timing runs/timing.json
echo "the shipped model written after $(minutes_since_start) minutes; \`make card\` writes its model card" >&2
