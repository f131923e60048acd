# `make train`: set up .venv if needed and train on the shipped LSP sample.
# `make test`:  same set-up, then lint and the whole test suite.
# `make tensorboard`: TensorBoard on every run under checkpoints/, at http://127.0.0.1:6006 (PORT=... to change).
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

PORT ?= 6006
# `make campaign`: campaign 2, the shipped LSP model's training run (LSPET + LSP im0001-0800, validated on
# im0801-1000), niced, in checkpoints/lsp-campaign2; re-running it resumes. It starts from campaign 1's final weights
# (CAMPAIGN_START) with the frame cut and photometric augmentation of docs/recipe.md's round 3 and a fresh cosine
# decay. Needs the datasets: LSP=DIR LSPET=DIR say where they are.
PRECISION ?= $(shell grep -qwE 'amx_bf16|avx512_bf16' /proc/cpuinfo && echo bf16 || echo fp32)

.PHONY: setup train test tensorboard campaign campaign-snapshot lsp-fast lsp-wide campaign3 clean-venv

setup: $(STAMP)

# Re-install when the pins or the package list change.
$(STAMP): requirements.txt pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip "setuptools>=68"
	$(PY) -m pip install --quiet -r requirements.txt
	$(PY) -m pip install --quiet --no-deps --no-build-isolation -e .
	@touch $(STAMP)

train: $(STAMP)
	$(PY) scripts/train.py $(ARGS)

test: $(STAMP)
	$(VENV)/bin/ruff check .
	$(PY) -m pytest -q -n 2 $(ARGS)

# $(call restore,RUN): a run directory lost with the work tree comes back from its committed snapshot, RUN-snapshot
# (`make campaign-snapshot CAMPAIGN=RUN` writes one), and the run resumes from it.
restore = if [ ! -f $(1)/checkpoint ] && [ -f $(1)-snapshot/checkpoint ]; then \
	echo "restoring $(1) from $(1)-snapshot"; mkdir -p $(1) && cp $(1)-snapshot/* $(1)/; fi

CAMPAIGN := checkpoints/lsp-campaign2
# The campaign's newest checkpoint, config and history, committed between sessions: a machine whose checkpoints/ was
# wiped resumes from it.
SNAPSHOT := $(CAMPAIGN)-snapshot
# Campaign 1's final checkpoint, which campaign 2 started from; out of the tree since campaign 2 finished (it is in
# history, commit 8f5277b): only a campaign 2 started afresh needs it back.
CAMPAIGN_START := checkpoints/lsp-campaign-snapshot
CAMPAIGN_START_COMMIT := 8f5277b
CAMPAIGN_CONFIG := TRAIN.EPOCHS=20 TRAIN.LR=3e-4 TRAIN.COSINE_START_EPOCH=0 \
	AUG.FRAME_CUT_PROB=0.3 AUG.BLUR_PROB=0.2 AUG.NOISE_PROB=0.2 AUG.JPEG_PROB=0.2

campaign: $(STAMP)
	@if [ -z "$(LSP)" ] || [ -z "$(LSPET)" ]; then \
		echo "make campaign needs the datasets: make campaign LSP=DIR LSPET=DIR (LSP and LSP extended folders)"; exit 2; fi
	@$(call restore,$(CAMPAIGN))
	@if [ ! -f $(CAMPAIGN)/checkpoint ] && [ ! -f $(CAMPAIGN_START)/checkpoint ]; then \
		echo "campaign 2 starts from $(CAMPAIGN_START), which is not here: git checkout $(CAMPAIGN_START_COMMIT) -- $(CAMPAIGN_START)"; exit 2; fi
	@# --load only starts the run: a run directory with a checkpoint resumes from its own
	load=$$(test -f $(CAMPAIGN)/checkpoint || echo --load $(CAMPAIGN_START)); \
	nice -n 19 $(PY) scripts/train.py --preset lsp --precision $(PRECISION) $$load \
		--data lsp --datadir $(LSPET) --split all --data lsp --datadir $(LSP) --split 1-800 \
		--val-data lsp --val-datadir $(LSP) --val-split 801-1000 --logdir $(CAMPAIGN) \
		--config $(CAMPAIGN_CONFIG) $(ARGS)

# `make lsp-fast` and `make lsp-wide`: the from-scratch recipes of docs/recipe.md's rounds 4 and 5 (`--preset lsp-fast`
# and `--preset lsp-wide`, 26 epochs each), niced, in checkpoints/<the target>, on the campaign's data; re-running one
# resumes it (from checkpoints/<the target>-snapshot if the run directory is gone). LSP=DIR LSPET=DIR as for the
# campaign.
lsp-fast lsp-wide: $(STAMP)
	@if [ -z "$(LSP)" ] || [ -z "$(LSPET)" ]; then \
		echo "make $@ needs the datasets: make $@ LSP=DIR LSPET=DIR (LSP and LSP extended folders)"; exit 2; fi
	@$(call restore,checkpoints/$@)
	nice -n 19 $(PY) scripts/train.py --preset $@ --precision $(PRECISION) \
		--data lsp --datadir $(LSPET) --split all --data lsp --datadir $(LSP) --split 1-800 \
		--val-data lsp --val-datadir $(LSP) --val-split 801-1000 --logdir checkpoints/$@ $(ARGS)

# `make campaign3`: campaign 3, the lsp-wide run's weights (`make lsp-wide` first) trained on with a fresh cosine from
# 5e-4 over 40 more epochs, as campaign 2 continued campaign 1; niced, in checkpoints/lsp-campaign3, resumes.
# `make campaign-snapshot CAMPAIGN=checkpoints/lsp-campaign3` snapshots it.
CAMPAIGN3 := checkpoints/lsp-campaign3
CAMPAIGN3_FROM := lsp-wide
CAMPAIGN3_CONFIG := TRAIN.EPOCHS=40 TRAIN.LR=5e-4

campaign3: $(STAMP)
	@if [ -z "$(LSP)" ] || [ -z "$(LSPET)" ]; then \
		echo "make campaign3 needs the datasets: make campaign3 LSP=DIR LSPET=DIR (LSP and LSP extended folders)"; exit 2; fi
	@$(call restore,$(CAMPAIGN3))
	@# it starts from the finished $(CAMPAIGN3_FROM) run (back from its snapshot, which holds the finished weights, if
	@# the run directory is gone): a run still training has not decayed yet
	@test -f $(CAMPAIGN3)/checkpoint || $(call restore,checkpoints/$(CAMPAIGN3_FROM))
	@test -f $(CAMPAIGN3)/checkpoint || $(PY) -c "from engine.rundir import RunDir; import sys; \
		r = RunDir('checkpoints/$(CAMPAIGN3_FROM)'); \
		done = r.has_config() and r.last('epoch_num', 0) >= r.read_meta()['config']['TRAIN']['EPOCHS']; \
		sys.exit(0 if done else 'campaign 3 starts from the finished $(CAMPAIGN3_FROM) run in ' \
		'checkpoints/$(CAMPAIGN3_FROM), which is not there or not finished: make $(CAMPAIGN3_FROM) first')"
	load=$$(test -f $(CAMPAIGN3)/checkpoint || echo --load checkpoints/$(CAMPAIGN3_FROM)); \
	nice -n 19 $(PY) scripts/train.py --preset $(CAMPAIGN3_FROM) --precision $(PRECISION) $$load \
		--data lsp --datadir $(LSPET) --split all --data lsp --datadir $(LSP) --split 1-800 \
		--val-data lsp --val-datadir $(LSP) --val-split 801-1000 --logdir $(CAMPAIGN3) \
		--config $(CAMPAIGN3_CONFIG) $(ARGS)

campaign-snapshot:
	$(PY) -c "from engine.rundir import RunDir; print(*RunDir('$(CAMPAIGN)').snapshot('$(SNAPSHOT)'))"
	@du -sh $(SNAPSHOT)

tensorboard: $(STAMP)
	$(VENV)/bin/tensorboard --logdir checkpoints --host 127.0.0.1 --port $(PORT)

clean-venv:
	rm -rf $(VENV)
