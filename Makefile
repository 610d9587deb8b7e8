# mobilebench. The README's two commands: `make bench-mobile` (everything) and `make test`.
# Each target sets up .venv itself when it is missing.
PY      := .venv/bin/python
TFLRT   := .venv-tflite-runtime/bin/python
# pip install through uv with pip's own configuration, pip if uv fails (scripts/pip_install.py: ~1 min, not ~3.5)
PIPI    := python3 scripts/pip_install.py
# pip warns about every missing local index folder on this machine; keep the output readable
PIPFILTER := 2>&1 | grep -v "^WARNING: Location" || true
MODELS  ?=
PATHS   ?=
MODEL   ?=
PROFILES ?=
OPS     ?=
SHAPE   ?=
BASELINE ?= baselines/digits_cnn.jsonl
SRC     ?=
SAMPLES ?=
LADDER  ?=

.PHONY: setup sandbox-tool setup-tflite-runtime train export bench-mobile bench probes report explore bench-check test test-serial test-slow fuzz clean help bench-pipeline package compat

help:
	@echo "make bench-mobile   set up, train, export and benchmark everything; writes results/"
	@echo "make test           the test suite (< 10 min)"
	@echo "make export         train + export only;  make report   rebuild results/report.{md,html}"
	@echo "make bench-check    regression gate vs BASELINE=$(BASELINE) (LATENCY=fail|warn|off)"
	@echo "make probes         operator support matrix (one-operator models x every export path)"
	@echo "make compat         each .tflite/.onnx on released runtime versions (LADDER=default|full|ids; docs/compat.md)"
	@echo "make fuzz           fuzz the loaders (1000 mutants per format) and kill/resume export+bench"
	@echo "make bench-mobile MODEL=path/to/model.tflite   benchmark your own file"
	@echo "make bench-mobile MODEL=m.tflite SHAPE=4,16   ... with a dynamic dim (one SHAPE word per input)"
	@echo "make package SRC=my_model.pt2 SAMPLES=samples.npz   your model -> verified Android/iOS bundle in dist/"
	@echo "make explore MODEL=digits_cnn ARTIFACT=keras__tflite_int8   graph with op time + int8 error (PORT= NO_OPEN=1)"
	@echo "make test-slow      slower real-runtime checks (peer agreement with litert-benchmark)"
	@echo "variables: MODELS=a,b  PATHS=p,q  PROFILES=big-core,2-core  V=1 (libraries' output on the terminal)"

setup: .venv/.installed .venv-tflite-runtime/.installed sandbox-tool

# the OS sandbox of the workers that open a user's model (docs/security.md): bubblewrap
sandbox-tool:
	@command -v bwrap >/dev/null || { command -v apt-get >/dev/null && apt-get update -q >/dev/null && \
		apt-get install -y -q bubblewrap >/dev/null; } || echo "warning: bubblewrap is not installed: package and \
	bench of your own file refuse to run without it (or with --no-sandbox); see docs/security.md"

# requirements-nodeps.txt goes in with --no-deps: those packages' own pins (facenet-pytorch: an old
# torch and torchvision) must never replace the pinned stack
.venv/.installed: requirements.txt requirements-nodeps.txt
	test -x $(PY) || python3 -m venv .venv
	$(PIPI) $(PY) -r requirements.txt $(PIPFILTER)
	$(PIPI) $(PY) --no-deps -r requirements-nodeps.txt $(PIPFILTER)
	$(PY) -c "import torch, executorch, tensorflow, ai_edge_litert, litert_torch" 2>/dev/null
	$(PY) -c "from models.mtcnn import weights_file; assert weights_file('onet').exists()"
	touch $@

# the old interpreter needs numpy<2, so it gets its own small venv (run through a worker process)
setup-tflite-runtime: .venv-tflite-runtime/.installed
.venv-tflite-runtime/.installed: requirements-tflite-runtime.txt
	test -x $(TFLRT) || python3 -m venv .venv-tflite-runtime
	$(PIPI) $(TFLRT) -r requirements-tflite-runtime.txt $(PIPFILTER)
	$(TFLRT) -c "import tflite_runtime.interpreter"
	touch $@

train: setup
	$(PY) -m pipeline $(VERBOSE_FLAG) train $(if $(MODELS),--models $(MODELS))

export: setup
	$(PY) -m pipeline $(VERBOSE_FLAG) export $(if $(MODELS),--models $(MODELS)) $(if $(PATHS),--paths $(PATHS))

# the libraries' own output goes to results/logs/<command>-<time>.log; V=1 shows it on the terminal too
VERBOSE_FLAG = $(if $(V),-v)

# the emulated ARM64 column is part of every bench (NO_DEVICE=1 skips it)
DEVICE_FLAG = $(if $(NO_DEVICE),--no-device)
DEVICE_DEP = $(if $(NO_DEVICE),,device-optional)
ifeq ($(MODEL),)
# the device build (downloads, one small compile: it times nothing) runs beside the export, not after it
bench-mobile: setup
	$(MAKE) --no-print-directory -j2 export $(DEVICE_DEP)
	$(PY) -m pipeline $(VERBOSE_FLAG) bench $(if $(MODELS),--models $(MODELS)) $(if $(PROFILES),--profiles $(PROFILES)) $(DEVICE_FLAG)
else
bench-mobile: setup $(DEVICE_DEP)
	$(PY) -m pipeline $(VERBOSE_FLAG) bench $(MODEL) $(if $(PROFILES),--profiles $(PROFILES)) $(foreach s,$(SHAPE),--shape $(s)) $(DEVICE_FLAG)
endif

# the runtime-version ladder (docs/compat.md): every exported .tflite/.onnx on released LiteRT/TFLite and
# ONNX Runtime versions, after `make export`. Not part of bench-mobile: its first run builds one
# environment per release in .cache/compat (default ladder: 17 environments, minutes and GBs, see the doc)
compat: setup
	$(PY) -m pipeline $(VERBOSE_FLAG) compat $(if $(MODELS),--models $(MODELS)) $(if $(LADDER),--ladder $(LADDER))

# operator probes: OPS=conv2d,gru  PATHS=tflite_fp32,...
probes: setup
	$(PY) -m pipeline $(VERBOSE_FLAG) probe $(if $(OPS),--ops $(OPS)) $(if $(PATHS),--paths $(PATHS))

# your own model -> dist/<name>/ (OUT=dir NAME=n PREFER=size|speed|accuracy PATHS=... PROFILES=... LADDER=none|...)
package: setup
	@test -n "$(SRC)" || { echo "usage: make package SRC=model.pt2|model.keras|saved_model_dir|file.py:fn [SAMPLES=samples.npz]"; exit 2; }
	$(PY) -m pipeline $(VERBOSE_FLAG) package $(SRC) $(if $(SAMPLES),--samples $(SAMPLES)) $(if $(OUT),--out $(OUT)) \
		$(if $(NAME),--name $(NAME)) $(if $(PREFER),--prefer $(PREFER)) $(if $(PATHS),--paths $(PATHS)) \
		$(if $(PROFILES),--profiles $(PROFILES)) $(if $(LADDER),--ladder $(LADDER))

report: setup
	$(PY) -m pipeline report

# the graph view: Model Explorer on one artifact with its overlays (pipeline/explore/); the viewer is an
# optional package, installed here on first use (pinned; it leaves the pinned stack as it is)
explore: setup .venv/.explorer-installed
	@test -n "$(MODEL)" -a -n "$(ARTIFACT)" || { echo "usage: make explore MODEL=digits_cnn ARTIFACT=keras__tflite_int8 [PORT=8080] [NO_OPEN=1]"; exit 2; }
	$(PY) -m pipeline explore $(MODEL) $(ARTIFACT) $(if $(PORT),--port $(PORT)) $(if $(NO_OPEN),--no-open)

.venv/.explorer-installed: requirements-explorer.txt
	@$(PIPI) $(PY) -r requirements-explorer.txt $(PIPFILTER)
	@$(PY) -c "import model_explorer" 2>/dev/null || { echo "error: ai-edge-model-explorer did not install into .venv (pip install -r requirements-explorer.txt); the overlays are in results/explorer/"; exit 2; }
	touch $@

# pipeline speed against its budgets (cold/warm export, bench), in a scratch copy of the tree
bench-pipeline: setup
	$(PY) -m pipeline.tools.bench_pipeline $(if $(MODELS),--models $(MODELS))

# regression gate: results/results.jsonl vs a committed baseline, thresholds in bench_check.toml
bench-check: setup
	$(PY) -m pipeline check --baseline $(BASELINE) $(if $(LATENCY),--latency $(LATENCY))

# two pytest-xdist workers (one per core): the suite's tests are whole pipeline runs, CPU-bound, so more
# workers only contend (4 workers were slower than 2); a test file stays on one worker (its module fixtures
# are built once), and the shared caches of tests/conftest.py are built by one worker at a time
TEST_JOBS ?= 2
test: setup .venv/.explorer-installed
	$(PY) -m pytest -q -n $(TEST_JOBS) --dist loadfile tests

test-serial: setup .venv/.explorer-installed
	$(PY) -m pytest -q tests

test-slow: setup
	$(PY) -m pytest -q -m slow tests

clean:
	rm -rf artifacts results

# 1000 mutants per format through the real loaders + repeated random kills of export/bench
# (pytest marker `fuzz`, excluded from `make test`); FUZZ_PER_FORMAT=n / FUZZ_PER_KIND=n (.pt2, SavedModel) change the counts
fuzz: setup
	$(PY) -m pytest -q -s -m fuzz tests

include device_tests/device.mk
