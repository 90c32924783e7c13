# Two commands for a newcomer: `make serve` and `make test`. Both set themselves up.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: install serve test chromium clean model card shift

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(VENV)/.installed-%: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e ".[$*]"
	touch $@

# Everything: training, tests, benchmarks.
install: $(VENV)/.installed-dev

# The web app on the shipped model; the serving install only (no PyTorch).
serve: | $(BIN)/python
	@test -f $(VENV)/.installed-dev || $(MAKE) --no-print-directory $(VENV)/.installed-serve EXTRAS=serve
	$(BIN)/agedetect serve --host $(HOST) --port $(PORT)

$(VENV)/.installed-serve: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e .
	touch $@

test: install chromium
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# Debian's chromium for the browser tests. Without it they skip, except under CI=true,
# where a missing browser fails the run (tests/conftest.py refuses to start, too).
chromium:
	@command -v chromium >/dev/null 2>&1 || (apt-get update -qq && apt-get install -y -qq chromium >/dev/null) || \
	if [ "$$CI" = true ]; then echo "error: chromium is missing and could not be installed; CI=true needs the browser tests" >&2; exit 1; \
	else echo "chromium unavailable: browser tests will be skipped"; fi

clean:
	rm -rf $(VENV) build dist src/*.egg-info .pytest_cache

# Retrain the shipped model and put it in the package, with its test and validation figures
# in its sidecar. The model card records how long it took; CI never runs it.
model: install
	bash scripts/train_models.sh

# After `make model`: the brief's baselines, the comparisons and benchmarks beside the shipped
# model, then docs/MODEL_CARD.md and the README's figures and example answer.
card: install
	bash scripts/card_runs.sh
	$(BIN)/python scripts/model_card.py
	$(BIN)/python scripts/readme_example.py

# Leave-one-dataset-out: each recipe trained on one dataset, scored on the other (5 to 10
# minutes a run on a 2-core CPU), the pretrained network in two chip framings, the
# gated runs' weights mixed with the pretrained ones, the training age mix divided out of
# the shipped model's answer, two recipes' runs averaged, and three seeds' weights
# averaged; the model card's "Photos unlike the training set" and "Past experiments".
shift: install
	test -f runs/data/manifest.csv || $(BIN)/agedetect data prepare ../shared/data/utkface ../shared/data/aaf --out runs/data --json > runs/prepare.json
	bash scripts/shift_runs.sh
	$(BIN)/python bench/pretrained_bias.py --data runs/data --framing 64:1.0 --framing 80:0.9 --dlib-box 600 --json runs/pretrained-bias.json
	$(BIN)/python bench/shift.py --data runs/data --models final=src/agedetect/weights/age_model.onnx --json runs/shift.json | tee runs/shift.md
	$(BIN)/python bench/weight_interpolation.py --data runs/data --run runs/shift/gated-utkface --run runs/shift/gated-aaf --json runs/weight-interpolation.json | tee runs/weight-interpolation.md
	$(BIN)/python bench/age_prior.py --data runs/data --json runs/age-prior.json | tee runs/age-prior.md
	for trained_on in utkface aaf; do \
	  $(BIN)/python bench/combine_members.py --data runs/data --split val --run runs/shift/native-distilled-$$trained_on \
	    --run runs/shift/surroundings-$$trained_on --json runs/members-loo-$$trained_on.json; \
	  $(BIN)/python bench/combine_members.py --data runs/data --split val --run runs/shift/native-distilled-$$trained_on \
	    --run runs/shift/surroundings-$$trained_on --run runs/shift/descriptor-$$trained_on --without-last \
	    --json runs/members-loo3-$$trained_on.json; done
	for seed in 5 6; do \
	  $(BIN)/agedetect train --model final --data runs/data --datasets utkface --out runs/soup/gated-utkface-s$$seed \
	    --epochs 5 --seed $$seed --balance 0.5 --degrade 0.3 --teacher pretrained --teacher-weight 0.5 --teacher-gate 5; done
	$(BIN)/python bench/combine_members.py --data runs/data --split val --soup --run runs/shift/gated-utkface \
	  --run runs/soup/gated-utkface-s5 --run runs/soup/gated-utkface-s6 --json runs/members-soup.json
