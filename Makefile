# README's two set-up commands:
#   make demo   venv + install + demo data -> ScanNet converter -> MSM pretraining -> linear probe
#               of the MSM backbone beside the same probe of a randomly initialised backbone
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
DEMO_MSM ?= work_dirs/demo_msm
PYTEST_ARGS ?=
# The demo's CPU jobs run single-threaded: the data loader's worker takes the other core, and
# OpenMP's busy-waiting made 2-thread steps 5-10x slower whenever anything else ran.
DEMO_THREADS ?= 1
DEPTH_RAW ?= data/kitti_raw_demo
DEPTH_OUT ?= data/kitti_demo
DEPTH_WORK ?= work_dirs/demo_monodepth

.PHONY: install demo demo-seg test bench clean-demo demo-depth clean-demo-depth

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
	OMP_NUM_THREADS=$(DEMO_THREADS) $(PY) tools/train.py configs/msm_scannet_demo.py --work-dir $(DEMO_MSM)
	@ckpt=$$(cat $(DEMO_MSM)/last_checkpoint); \
	  echo "== demo: linear probe (cached features) of the MSM backbone $$ckpt =="; \
	  OMP_NUM_THREADS=$(DEMO_THREADS) $(PY) tools/linear_probe.py configs/linear_probe_scannet_demo.py --checkpoint $$ckpt \
	    --cached --result-json $(DEMO_MSM)/probe_msm.json --work-dir $(DEMO_MSM)/probe_msm
	@echo "== demo: the same probe of a randomly initialised backbone =="
	OMP_NUM_THREADS=$(DEMO_THREADS) $(PY) tools/linear_probe.py configs/linear_probe_scannet_demo.py --checkpoint none \
	  --cached --result-json $(DEMO_MSM)/probe_random.json --work-dir $(DEMO_MSM)/probe_random
	@echo "== demo: demo val split, ScanNet20 classes (chance is about 0.05 mIoU) =="
	$(PY) tools/probe_report.py msm=$(DEMO_MSM)/probe_msm.json \
	  random_init=$(DEMO_MSM)/probe_random.json

# Supervised SpUNet segmentation on the demo rooms (the foundation's demo).
demo-seg: $(STAMP)
	$(PY) tools/make_demo_data.py --out $(DEMO_RAW)
	$(PY) data_converters/scannet.py --root $(DEMO_RAW) --out $(DEMO_OUT) --workers 2
	$(PY) tools/train.py configs/spunet_seg_scannet_demo.py --work-dir $(DEMO_WORK)
	@ckpt=$$(ls -t $(DEMO_WORK)/best_*.pth | head -n 1); \
	  echo "== demo-seg: evaluating $$ckpt on the demo val split (chance is about 0.05 mIoU) =="; \
	  $(PY) tools/test.py configs/spunet_seg_scannet_demo.py $$ckpt --work-dir $(DEMO_WORK)/test

# pytest exits 5 when it collects no test; that is not a failure of the suite.
test: $(STAMP)
	$(PY) -m pytest -q $(PYTEST_ARGS); rc=$$?; if [ $$rc -eq 5 ]; then echo "pytest: no tests collected"; rc=0; fi; exit $$rc

bench: $(STAMP)
	$(PY) bench/bench_foundation.py
	$(PY) bench/bench_msm.py --demo --sizes 5000 20000

clean-demo:
	rm -rf $(DEMO_RAW) $(DEMO_OUT) $(DEMO_WORK) $(DEMO_MSM)

# Self-supervised depth on procedural drives in the KITTI raw layout: demo data -> KITTI converter
# -> Monodepth2 training (CPU demo config) -> AbsRel on the held-out test drive -> depth video.
demo-depth: $(STAMP)
	$(PY) tools/make_demo_data.py --kind kitti --out $(DEPTH_RAW)
	$(PY) data_converters/kitti.py --root $(DEPTH_RAW) --out $(DEPTH_OUT) --workers 2
	OMP_NUM_THREADS=$(DEMO_THREADS) $(PY) tools/train.py configs/monodepth_kitti_demo.py --work-dir $(DEPTH_WORK)
	@ckpt=$$(cat $(DEPTH_WORK)/last_checkpoint); \
	  echo "== demo-depth: evaluating $$ckpt on the demo test drive (an untrained model scores AbsRel about 0.48) =="; \
	  OMP_NUM_THREADS=$(DEMO_THREADS) $(PY) tools/test.py configs/monodepth_kitti_demo.py $$ckpt --work-dir $(DEPTH_WORK)/test && \
	  OMP_NUM_THREADS=$(DEMO_THREADS) $(PY) tools/demo_depth_video.py configs/monodepth_kitti_demo.py $$ckpt \
	    --video $(DEPTH_RAW)/demo_video.mp4 --out $(DEPTH_WORK)/demo_depth.mp4

clean-demo-depth:
	rm -rf $(DEPTH_RAW) $(DEPTH_OUT) $(DEPTH_WORK)
