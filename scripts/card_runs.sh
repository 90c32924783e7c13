#!/usr/bin/env bash
# What docs/MODEL_CARD.md shows beside the shipped model: the brief's baselines (a dense
# network, a small CNN, the pretrained network's last layers retrained), the shipped
# model's members alone and in other mixes, and the benchmarks against the installable
# peer. Run from the repository root after scripts/train_models.sh (`make model`):
#
#     make card             # this, then scripts/model_card.py and scripts/readme_example.py
#
# It never changes the shipped model. TRAIN=0 skips training the baselines (those already
# in runs/ are exported and scored again).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/recipe.sh
source scripts/recipe.sh
test -f runs/final.onnx || { echo "error: runs/final.onnx is missing: run make model first" >&2; exit 1; }

if [ "$TRAIN" = 1 ]; then
train_runs <<RUNS
dense dense 15 64 1.0 1e-3 0 -
cnn cnn 10 64 1.0 2e-3 0 -
transfer transfer 8 64 1.0 3e-3 0 -
RUNS
fi
for name in dense cnn transfer; do
  "$BIN/agedetect" export "runs/$name" --out "runs/$name.onnx"
done
# The same members in float32, to show what int8 changes (bench/compare_peer.py below).
# shellcheck disable=SC2086
"$BIN/agedetect" export $FINAL "${SHARES[@]}" --out runs/final-float32.onnx --calibrate-on "$DATA" --coverage "$COVERAGE"
# The two ResNet-10s alone with their mirror passes (the model shipped before the descriptor
# joined), to show what the descriptor adds.
PAIR="runs/final-c runs/final-g"
# shellcheck disable=SC2086
"$BIN/agedetect" export $PAIR --mirror --out runs/final-pair.onnx "${CALIBRATE[@]}"
"$BIN/agedetect" evaluate "$DATA" --split test --model runs/final-pair.onnx --json --min-age 18 --buffer 7 \
  > runs/final-pair-test.json
# What averaging the members does, on validation faces (the model card's teachers and its
# face descriptor): the ResNet-10s and the first descriptor head alike, without the head, and
# with it at 40% and at half (as shipped before the second head joined).
THREE="runs/final-c runs/final-g runs/final-x"
# shellcheck disable=SC2046,SC2086
"$BIN/python" bench/combine_members.py --data "$DATA" --split val $(printf -- '--run %s ' $THREE) \
  --without-last --last-share 0.4 --last-share 0.5 --json runs/members-final.json > runs/members-final.md
# Each member alone, one pass, as every earlier model the model card compares was scored.
for member in $FINAL; do
  "$BIN/agedetect" export "$member" --no-mirror --out "$member.onnx" "${CALIBRATE[@]}"
  "$BIN/agedetect" evaluate "$DATA" --split test --model "$member.onnx" --json --min-age 18 --buffer 7 > "$member-test.json"
done

"$BIN/python" bench/compare_peer.py --data "$DATA" --split test \
  --model dense=runs/dense.onnx --model cnn=runs/cnn.onnx --model transfer=runs/transfer.onnx \
  --model final=src/agedetect/weights/age_model.onnx --model final-float32=runs/final-float32.onnx \
  --model final-pair=runs/final-pair.onnx \
  --json runs/compare.json | tee runs/compare.md
"$BIN/python" bench/screening.py --data "$DATA" --split val --caps --json > runs/screening-caps.json
"$BIN/python" bench/screening.py --data "$DATA" --split test > runs/screening.md
"$BIN/python" bench/whole_photos.py --data "$DATA" --split test --json runs/whole-photos.json | tee runs/whole-photos.md
"$BIN/python" bench/faults.py --data "$DATA" --split val --model shipped=src/agedetect/weights/age_model.onnx \
  --model pair=runs/final-pair.onnx --json runs/faults.json | tee runs/faults.md
write_timing runs/card-timing.json
echo "took $(minutes_since_start) minutes" >&2
