# Two commands for a fresh machine: `make demo` (the main job) and `make test` (the test suite).
# Both create or reuse the virtual environment in .venv and install everything from this repo's own files.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
OUT ?= outputs/demo
WEB_HOST ?= 127.0.0.1
WEB_PORT ?= 7860
export HF_HUB_OFFLINE ?= 1
export HF_DATASETS_OFFLINE ?= 1
export TOKENIZERS_PARALLELISM ?= false

.PHONY: install demo test test-fast fetch-data bench clean web

$(STAMP): setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# The CPU wheel first, on its own: anything else would let pip pull a multi-GB CUDA build of torch.
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e ".[test]"
	# nuwa-pytorch 0.7.8, the baseline of benchmarks/time_training.py (tests/benchmarks/test_time_training.py runs it
	# tiny): its transformer needs only einops and unfoldNd, so --no-deps keeps its torchvision (and a CUDA torch) out.
	# A folder of its own, put on the path by the tests that need it: unfoldNd's wheel ships a top-level `test` package.
	$(PY) -m pip install -q --no-deps --target $(VENV)/baselines nuwa-pytorch==0.7.8 einops==0.8.2 unfoldNd==0.2.3
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(PY) -m nuwa_hf.cli demo --model checkpoints/nuwa-tiny --out $(OUT) --digit-reader checkpoints/mnist-digit-reader

# The Gradio web demo of all eight tasks on this machine only (Ctrl-C stops it).
web: $(STAMP)
	@echo "NUWA web demo: open http://$(WEB_HOST):$(WEB_PORT)/ once the model has loaded"
	$(PY) spaces/nuwa/app.py --model checkpoints/nuwa-tiny --host $(WEB_HOST) --port $(WEB_PORT)

# tests/gpu (the CUDA-marked backend tests) runs on its own under the Triton interpreter, with tiny grids: the
# interpreter must be switched on before triton is imported. On a GPU machine benchmarks/gpu_check.sh runs them full size.
test: $(STAMP)
	$(PY) -m pytest -q -ra --ignore=tests/gpu tests
	TRITON_INTERPRET=1 $(PY) -m pytest -q -ra -m cuda tests/gpu

test-fast: $(STAMP)
	$(PY) -m pytest -q -ra -m "not slow" --ignore=tests/gpu tests
	TRITON_INTERPRET=1 $(PY) -m pytest -q -ra -m cuda tests/gpu

fetch-data: $(STAMP)
	$(PY) -m nuwa_hf.data.fetch

bench: $(STAMP)
	$(PY) benchmarks/bench_nearby_attention.py --threads 1
	$(PY) benchmarks/bench_generate.py --threads 1
	$(PY) benchmarks/bench_training.py
	$(PY) benchmarks/bench_gpu_kernel.py

clean:
	rm -rf $(VENV) build *.egg-info src/*.egg-info .pytest_cache
