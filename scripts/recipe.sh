# What scripts/train_models.sh (`make model`) and scripts/card_runs.sh (`make card`) share:
# where things are, the shipped model's members and how they are exported, and how a table
# of runs is trained. Sourced by both; run from the repository root.
BIN=${BIN:-.venv/bin}
DATA=${DATA:-runs/data}
# Share of its validation faces the shipped 80% interval must cover in every dataset
# (above 80%: faces unlike every training set fall outside more often; bench/shift.py).
COVERAGE=${COVERAGE:-0.85}
TRAIN=${TRAIN:-1}
mkdir -p runs

# The final model: the four members averaged alike, one pass each, their interval widened
# on every dataset's validation faces, weights in int8. One pass of the descriptor network
# costs about what six of a ResNet-10 do, so both heads read one pass of it (agedetect
# export does that for heads on one frozen network) and the ResNet-10s read no mirror image
# (bench/compare_peer.py in scripts/card_runs.sh times it).
FINAL="runs/final-c runs/final-g runs/final-x runs/final-xs"
SHARES=(--no-mirror --member-weights 1,1,1,1)
CALIBRATE=(--calibrate-on "$DATA" --coverage "$COVERAGE" --quantize)

# Trains the runs of a table read from standard input, a line each:
# name run-folder epochs input-size crop learning-rate seed body options...
# (body: the pretrained layers' share of the learning rate; - for the model's default).
train_runs() {
  while read -r name run epochs size crop lr seed body options; do
    body_option=()
    [ "$body" = - ] || body_option=(--body-lr-scale "$body")
    # shellcheck disable=SC2086  # options are words
    "$BIN/agedetect" train --model "$name" --data "$DATA" --out "runs/$run" --epochs "$epochs" \
      --input-size "$size" --crop "$crop" --lr "$lr" --seed "$seed" "${body_option[@]}" $options
  done
}
started=$(date +%s)
minutes_since_start() { echo $(( ($(date +%s) - started) / 60 )); }
# For the model card (scripts/model_card.py): whether this run trained, and how long it took.
write_timing() {  # file
  printf '{"trained": %s, "minutes": %s}\n' "$([ "$TRAIN" = 1 ] && echo true || echo false)" "$(minutes_since_start)" > "$1"
}
