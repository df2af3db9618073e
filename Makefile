# README's two set-up commands:
#   make demo   venv + install + demo data -> ScanNet converter -> training -> val mIoU
#   make test   venv + install + the test suite
# Both create .venv when it is missing and reinstall only when requirements change.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.geo3d-installed
DEMO_RAW ?= data/scannet_raw_demo
DEMO_OUT ?= data/scannet_demo
DEMO_WORK ?= work_dirs/demo_spunet_seg
PYTEST_ARGS ?=

.PHONY: install demo test bench clean-demo

install: $(STAMP)

$(STAMP): requirements/cpu.txt pyproject.toml
	@bash tools/install_system_deps.sh
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -r requirements/cpu.txt
	$(PY) -m pip install -q --disable-pip-version-check --no-build-isolation --no-deps -e .
	@touch $(STAMP)

demo: $(STAMP)
	$(PY) tools/make_demo_data.py --out $(DEMO_RAW)
	$(PY) data_converters/scannet.py --root $(DEMO_RAW) --out $(DEMO_OUT) --workers 2
	$(PY) tools/train.py configs/spunet_seg_scannet_demo.py --work-dir $(DEMO_WORK)
	@ckpt=$$(ls -t $(DEMO_WORK)/best_*.pth | head -n 1); \
	  echo "== demo: evaluating $$ckpt on the demo val split (chance is about 0.05 mIoU) =="; \
	  $(PY) tools/test.py configs/spunet_seg_scannet_demo.py $$ckpt --work-dir $(DEMO_WORK)/test

# pytest exits 5 when it collects no test; that is not a failure of the suite.
test: $(STAMP)
	$(PY) -m pytest -q $(PYTEST_ARGS); rc=$$?; if [ $$rc -eq 5 ]; then echo "pytest: no tests collected"; rc=0; fi; exit $$rc

bench: $(STAMP)
	$(PY) bench/bench_foundation.py

clean-demo:
	rm -rf $(DEMO_RAW) $(DEMO_OUT) $(DEMO_WORK)
