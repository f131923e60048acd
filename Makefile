# `make train`: set up .venv if needed and train on the shipped LSP sample.
# `make test`:  same set-up, then lint and the whole test suite.
# `make tensorboard`: TensorBoard on every run under checkpoints/, at http://127.0.0.1:6006 (PORT=... to change).
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

PORT ?= 6006
# `make campaign`: the shipped LSP model's training run (LSPET + LSP im0001-0800, validated on im0801-1000), niced,
# in checkpoints/lsp-campaign; re-running it resumes. Needs the datasets: LSP=DIR LSPET=DIR say where they are.
PRECISION ?= $(shell grep -qwE 'amx_bf16|avx512_bf16' /proc/cpuinfo && echo bf16 || echo fp32)

.PHONY: setup train test tensorboard campaign campaign-snapshot clean-venv

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
	$(PY) -m pytest -q $(ARGS)

CAMPAIGN := checkpoints/lsp-campaign
# The campaign's newest checkpoint (with its optimiser state), config and history, committed between sessions: a
# machine whose checkpoints/ was wiped resumes from it.
SNAPSHOT := checkpoints/lsp-campaign-snapshot

campaign: $(STAMP)
	@if [ -z "$(LSP)" ] || [ -z "$(LSPET)" ]; then \
		echo "make campaign needs the datasets: make campaign LSP=DIR LSPET=DIR (LSP and LSP extended folders)"; exit 2; fi
	@if [ ! -f $(CAMPAIGN)/checkpoint ] && [ -f $(SNAPSHOT)/checkpoint ]; then \
		echo "resuming the campaign from $(SNAPSHOT)"; mkdir -p $(CAMPAIGN) && cp $(SNAPSHOT)/* $(CAMPAIGN)/; fi
	nice -n 19 $(PY) scripts/train.py --preset lsp --precision $(PRECISION) \
		--data lsp --datadir $(LSPET) --split all --data lsp --datadir $(LSP) --split 1-800 \
		--val-data lsp --val-datadir $(LSP) --val-split 801-1000 --logdir $(CAMPAIGN) $(ARGS)

campaign-snapshot:
	@ckpt=$$(sed -n 's/^model_checkpoint_path: "\(.*\)"/\1/p' $(CAMPAIGN)/checkpoint) && test -n "$$ckpt" && \
		rm -rf $(SNAPSHOT) && mkdir -p $(SNAPSHOT) && \
		cp $(CAMPAIGN)/config.json $(CAMPAIGN)/stats.json $(CAMPAIGN)/$$ckpt.* $(SNAPSHOT)/ && \
		printf 'model_checkpoint_path: "%s"\nall_model_checkpoint_paths: "%s"\n' $$ckpt $$ckpt \
			> $(SNAPSHOT)/checkpoint && echo "$(SNAPSHOT): $$ckpt" && du -sh $(SNAPSHOT)

tensorboard: $(STAMP)
	$(VENV)/bin/tensorboard --logdir checkpoints --host 127.0.0.1 --port $(PORT)

clean-venv:
	rm -rf $(VENV)
