# The two commands: `make demo` and `make test`. Both create .venv if absent and install first.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.privlens-installed

.PHONY: install demo test lint bench clean models
.DEFAULT_GOAL := install

$(STAMP): pyproject.toml Makefile
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[dev]"
	# its metadata pins torch<2.3 and numpy<2, yet it runs with the versions above
	$(PY) -m pip install -q --no-deps facenet-pytorch==2.6.0
	touch $(STAMP)

install: $(STAMP)
	@echo "privlens is installed in $(VENV)/bin. To type 'privlens' in this shell:"
	@echo "    source $(VENV)/bin/activate        (or: export PATH=\"$$(cd $(VENV)/bin && pwd):\$$PATH\")"

demo: install
	$(VENV)/bin/privlens demo --out runs/demo

test: install
	$(PY) -m pytest -q

lint: install
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/ruff format --check src tests benchmarks

# The shipped default models (privlens/models/weights): U, then the lens; resumable (runs/shipped).
models: install
	$(PY) -m privlens.train.shipped --work runs/shipped

bench: install
	$(PY) benchmarks/bench_camera.py

clean:
	rm -rf runs .pytest_cache .ruff_cache
