"""Configuration of the STT service (environment prefix SPEECHMESH_STT_)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field
from pydantic_settings import SettingsConfigDict

from services.stt.diarization import DiarizationSettings
from speechmesh.common.settings import ServiceSettings


class WhisperSettings(BaseModel):
    threads: int = Field(0, ge=0, description="CTranslate2 threads per model; 0 lets it choose.")
    compute_type: str = Field("int8", description="CTranslate2 compute type (int8, int8_float32, float32, ...).")
    device: Literal["cpu", "cuda", "auto"] = Field("cpu", description="Where CTranslate2 runs the model.")
    beam_size: int = Field(5, ge=1, le=10, description="Beam width of the decoder.")
    decoding: Literal["batched", "sequential"] = Field(
        "batched",
        description="batched: voice-activity chunks of at most 30 s decoded as text, batch_size at a time "
        "(services/stt/engines/whisper_chunks.py); sequential: faster-whisper's timestamped 30 s windows, "
        "whose beam search can skip speech (kept for comparison).",
    )
    batch_size: int = Field(
        8,
        ge=1,
        le=64,
        description="Batched decoding: chunks of a file encoded in one step, and the most chunks, of one file or of "
        "concurrent calls, decoded together (services/stt/engines/whisper_batch.py).",
    )
    # Two: one replica serializes every call's encoder and alignment with the shared decoder;
    # with two, `make bench` (2026-12-01) had STT at 89-90% of its CPU-bound limit at 4-32
    # clients instead of 81-84%, for ~100 MiB more resident memory.
    replicas: int = Field(
        2, ge=1, le=16, description="CTranslate2 model replicas (num_workers): as many encoder calls run at once."
    )


class StreamingSettings(BaseModel):
    end_silence_seconds: float = Field(0.6, gt=0, description="Silence that ends an utterance.")
    interim_every_seconds: float = Field(1.0, gt=0, description="Audio between two interim results.")
    # Bounded because a client that never pauses would otherwise grow one utterance (and
    # the cost of re-transcribing it for every interim result) for as long as it sends.
    max_utterance_seconds: float = Field(30.0, gt=1, le=300, description="An utterance this long is cut and finalized.")
    speech_threshold: float = Field(0.5, gt=0, lt=1, description="Silero speech probability that counts as speech.")


class SttSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="SPEECHMESH_STT_", env_nested_delimiter="__", extra="ignore")

    port: int = Field(50052, ge=0, le=65535, description="gRPC port; 0 picks a free one.")
    # More calls than cores: Whisper decodes the chunks of concurrent calls together
    # (engines/whisper_batch.py), which takes half the decoder time of one at a time, so
    # four calls in flight finish sooner than two; each holds its decoded audio meanwhile.
    workers: int = Field(4, ge=1, description="Threads that run engine calls; also the calls of a model at once.")
    engines: list[str] = Field(
        ["whisper", "faster-whisper", "whisper-small", "whisper-medium", "whisper-large-v3", "sensevoice"],
        description="Models to load, by id; one whose weights are missing is listed as unavailable.",
    )
    default_model: str = Field("whisper", description="Model used when a request names none.")
    models_dir: Path = Field(
        Path("var/models"), description="Folder of model weights: <model id>/ holds a CTranslate2 Whisper model."
    )
    # The 100 MB upload limit does not bound the duration: 100 MB of 16 kbit/s MP3 or
    # Opus is 14 hours. A transcription holds its audio decoded (16 kHz float32: 230 MB per
    # hour) and one window's Whisper features (42 MB per minute): 2 h in 5-minute windows
    # is about 0.7 GB, so two at once fit beside the models in stt's 3 GiB (deploy/k8s).
    # Two hours covers long meetings and lectures; longer recordings can be split, or the
    # bound raised with the pod's memory.
    max_audio_seconds: float = Field(
        7_200,
        gt=0,
        description="Longest audio Recognize transcribes, in seconds; longer files are refused (413 file_too_large).",
    )
    window_seconds: float = Field(
        300,
        ge=60,
        le=1800,
        description="Audio longer than this is transcribed window by window, cut at pauses (services/stt/windows.py).",
    )
    whisper: WhisperSettings = WhisperSettings()
    diarization: DiarizationSettings = DiarizationSettings()
    streaming: StreamingSettings = StreamingSettings()
