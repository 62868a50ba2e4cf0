"""Configuration of the TTS service (environment prefix SPEECHMESH_TTS_)."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, Field, NonNegativeInt
from pydantic_settings import SettingsConfigDict

from speechmesh.common.settings import ServiceSettings


class PiperSettings(BaseModel):
    threads: int = Field(0, ge=0, description="onnxruntime intra-op threads; 0 lets it choose.")
    spin: bool = Field(False, description="onnxruntime threads busy-wait: faster on idle cores, slower on shared ones.")
    voices_dir: Path | None = Field(
        None, description="Folder with more Piper voices (<id>.onnx + <id>.onnx.json) to load."
    )
    # VITS samples noise on every call, so the same text reads differently each time; 0 for
    # both makes speech repeatable (the tests' voice). None keeps each voice's own values.
    noise_scale: float | None = Field(None, ge=0, description="Generator noise; none keeps the voice's own.")
    noise_w_scale: float | None = Field(None, ge=0, description="Phoneme length noise; none keeps the voice's own.")


class KokoroSettings(BaseModel):
    threads: int = Field(0, ge=0, description="onnxruntime intra-op threads; 0 lets it choose.")
    spin: bool = Field(False, description="onnxruntime threads busy-wait: faster on idle cores, slower on shared ones.")


class EspeakSettings(BaseModel):
    executable: str = Field("espeak-ng", description="The espeak-ng command (Debian package espeak-ng).")
    timeout_seconds: float = Field(60.0, gt=0, description="Longest one synthesis call may run.")


class FestivalSettings(BaseModel):
    executable: str = Field("text2wave", description="Festival's text2wave command (Debian package festival).")
    timeout_seconds: float = Field(120.0, gt=0, description="Longest one synthesis call may run.")


class XttsSettings(BaseModel):
    threads: int = Field(0, ge=0, description="torch CPU threads; 0 leaves torch's default.")


class TtsSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="SPEECHMESH_TTS_", env_nested_delimiter="__", extra="ignore")

    port: int = Field(50051, ge=0, le=65535, description="gRPC port; 0 picks a free one.")
    engines: list[str] = Field(
        ["piper", "kokoro", "espeak", "festival", "xtts"],
        description="Engines to load, by model id; one whose package or weights are missing is listed as unavailable.",
    )
    default_model: str = Field("piper", description="Model used when a request names none.")
    models_dir: Path = Field(
        Path("var/models"),
        description="Folder of model weights: xtts-v2/ holds Coqui XTTS-v2 (config.json, model.pth).",
    )
    piper: PiperSettings = PiperSettings()
    kokoro: KokoroSettings = KokoroSettings()
    espeak: EspeakSettings = EspeakSettings()
    festival: FestivalSettings = FestivalSettings()
    xtts: XttsSettings = XttsSettings()
    # Measured on 2 cores (docs/performance.md, 2026-12-01): engines take time in proportion to
    # the audio they make (Piper ~40 ms, Kokoro ~0.35 s a second of speech), so the first
    # audio waits for the first piece. 25 characters (a clause, or four or five words) bring
    # Piper's first audio through the gateway to ~45 ms and Kokoro's to ~300 ms; 12 made them
    # 28 and 197 ms but cost too much: "The sky on a" alone came back as "This guy on a", and
    # Kokoro's word error rate on a transcribed-back set rose from 0.051 (whole sentences) to
    # 0.071 (0.065 at 25). XTTS (slower than real time on CPU) gets the same cut; not measured
    # here. eSpeak and Festival keep the default. The environment variable replaces the whole
    # mapping: restate piper, kokoro and xtts in it.
    stream_first_piece_chars: dict[str, NonNegativeInt] = Field(
        {"piper": 25, "kokoro": 25, "xtts": 25},
        description="Streaming: the first piece of text is cut after about this many characters "
        "(at its last clause break or word break there), per model (others: 40; 0 keeps whole "
        "sentences), so the first audio leaves sooner.",
    )
    cloners: list[str] = Field(["world-adapt"], description="Cloning models to load, by id.")
    # The page asks for 10-30 s of reference speech, and WORLD's Harvest costs ~0.2 s of CPU
    # per second of audio (`cloning._f0`): the 20 MB a reference may have is ~10 min
    # of WAV, minutes of a worker for no better a voice. The rest of a longer one is ignored.
    clone_reference_max_seconds: float = Field(
        60.0, gt=0, description="Seconds of a clone reference that are used (its start); the rest is ignored."
    )
    # Measured (docs/performance.md): from Piper's Joe, WORLD adaptation lifts a Festival slt
    # reference 0.31 -> 0.53 and kal 0.58 -> 0.76; with Kokoro's voices in the set, slt's
    # nearest is jf_tebukuro (0.42) and adaptation adds nothing, and profiling Kokoro's five
    # voices makes the first clone ~94 s instead of ~9 s. Add models (or Piper voices in
    # piper.voices_dir) here; the nearest voice by d-vector is used.
    clone_base_models: list[str] = Field(
        ["piper"], description="Models whose voices world-adapt starts from (the nearest one is used)."
    )
