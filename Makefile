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
# demo drives with moving cars (multi-frame and Robust-Depth demos; paths the demo configs name)
DYN_RAW ?= data/kitti_raw_dyn
DYN_OUT ?= data/kitti_dyn
DYN_TEACHER ?= work_dirs/dyn_mono
# ScanNet demo rooms with rendered RGB-D frames (Gaussian2Scene demo)
G2S_RAW ?= data/scannet_raw_frames
G2S_OUT ?= data/scannet_frames

.PHONY: install demo demo-seg test bench clean-demo demo-depth clean-demo-depth demo-multiframe \
	demo-robust demo-g2s

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

# Multi-frame depth on demo drives with 3 moving cars: MonoDepth teacher -> ManyDepth and ProDepth
# (both start from the frozen teacher) -> AbsRel on all pixels and on the moving cars.
$(DYN_OUT)/splits/auto/test_info.json:
	$(PY) tools/make_demo_data.py --kind kitti --out $(DYN_RAW) --moving-objects 3
	$(PY) data_converters/kitti.py --root $(DYN_RAW) --out $(DYN_OUT) --workers 2

$(DYN_TEACHER)/epoch_8.pth: | $(DYN_OUT)/splits/auto/test_info.json
	OMP_NUM_THREADS=$(DEMO_THREADS) $(PY) tools/train.py configs/monodepth_kitti_demo.py --work-dir $(DYN_TEACHER) \
	  --cfg-options train_dataloader.dataset.data_root=$(DYN_OUT) test_dataloader.dataset.data_root=$(DYN_OUT)

demo-multiframe: $(STAMP) $(DYN_OUT)/splits/auto/test_info.json $(DYN_TEACHER)/epoch_8.pth
	@for m in manydepth prodepth; do \
	  OMP_NUM_THREADS=$(DEMO_THREADS) $(PY) tools/train.py configs/$${m}_kitti_demo.py --work-dir work_dirs/dyn_$$m \
	    --cfg-options model.teacher_checkpoint=$(DYN_TEACHER)/epoch_8.pth || exit 1; done
	@for m in manydepth prodepth; do echo "== demo-multiframe: $$m (abs_rel/dynamic = on the moving cars) =="; \
	  OMP_NUM_THREADS=$(DEMO_THREADS) $(PY) tools/test.py configs/$${m}_kitti_demo.py work_dirs/dyn_$$m/epoch_8.pth \
	    --work-dir work_dirs/dyn_$$m/test || exit 1; done

# Robust-Depth vs its MonoDepth baseline (same data, 16-epoch schedule and seed) on corrupted copies
# of the demo test drive (the demo's rendered depth drives fog/rain/snow, identical for both).
demo-robust: $(STAMP) $(DYN_OUT)/splits/auto/test_info.json
	@for cfg in monodepth_kitti_dyn_16e robust_depth_kitti_16e; do \
	  OMP_NUM_THREADS=$(DEMO_THREADS) $(PY) tools/train.py configs/$${cfg}_demo.py --work-dir work_dirs/$$cfg || exit 1; done
	@for sev in 3 5; do for cfg in monodepth_kitti_dyn_16e robust_depth_kitti_16e; do \
	  echo "== demo-robust: $$cfg, severity $$sev =="; \
	  OMP_NUM_THREADS=$(DEMO_THREADS) $(PY) tools/eval_corruptions.py configs/$${cfg}_demo.py work_dirs/$$cfg/epoch_16.pth \
	    --depth-source demo --severity $$sev --out work_dirs/$$cfg/corruptions_s$$sev.md \
	    --json work_dirs/$$cfg/corruptions_s$$sev.json || exit 1; done; done

# Gaussian2Scene on demo rooms with rendered RGB-D frames: stage 1 (RGB-D + point MAE) -> stage 2
# (per-point Gaussians rendered into the frames; held-out PSNR logged) -> render PNG -> linear
# probe of the stage-2 backbone.
demo-g2s: $(STAMP)
	$(PY) tools/make_demo_data.py --out $(G2S_RAW) --frames 30
	$(PY) data_converters/scannet.py --root $(G2S_RAW) --out $(G2S_OUT) --workers 2 --frames-every 1
	OMP_NUM_THREADS=$(DEMO_THREADS) $(PY) tools/train.py configs/gaussian2scene_stage1_scannet_demo.py --work-dir work_dirs/g2s_stage1_demo
	OMP_NUM_THREADS=$(DEMO_THREADS) $(PY) tools/train.py configs/gaussian2scene_scannet_demo.py --work-dir work_dirs/g2s_demo \
	  --cfg-options load_from=work_dirs/g2s_stage1_demo/epoch_100.pth
	OMP_NUM_THREADS=$(DEMO_THREADS) $(PY) tools/render_gaussians.py configs/gaussian2scene_scannet_demo.py \
	  work_dirs/g2s_demo/epoch_40.pth --out work_dirs/g2s_demo/renders.png
	OMP_NUM_THREADS=$(DEMO_THREADS) $(PY) tools/linear_probe.py configs/linear_probe_scannet_demo.py \
	  --checkpoint work_dirs/g2s_demo/epoch_40.pth --cached --result-json work_dirs/g2s_demo/probe.json \
	  --work-dir work_dirs/g2s_demo/probe \
	  --cfg-options train_dataloader.dataset.data_root=$(G2S_OUT) val_dataloader.dataset.data_root=$(G2S_OUT)
