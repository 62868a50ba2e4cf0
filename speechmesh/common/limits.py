"""Documented request limits, shared so the gateway and the services agree on them."""

# The seed API's speed range; engines render these speeds natively.
SPEED_MIN = 0.5
SPEED_MAX = 2.0
SPEED_DEFAULT = 1.0
# What the TTS service accepts (OpenAI's range): beyond the engines' range the audio is
# time-stretched.
SYNTHESIS_SPEED_MIN = 0.25
SYNTHESIS_SPEED_MAX = 4.0

# The largest text any plan may send (Enterprise); plans apply lower limits first.
TEXT_MAX_CHARS = 50_000

# Audio bytes per gRPC message; well under gRPC's 4 MB default message limit.
CHUNK_BYTES = 1024 * 1024

SAMPLE_RATE_MIN_HERTZ = 8_000
SAMPLE_RATE_MAX_HERTZ = 48_000

# Largest audio file a transcription accepts (the page's "max. 100MB", read as MiB).
STT_UPLOAD_MAX_BYTES = 100 * 1024 * 1024
# Largest reference recording a clone accepts (the page's "max 20MB", read as MiB).
CLONE_REFERENCE_MAX_BYTES = 20 * 1024 * 1024
# Largest conditioning prompt a transcription accepts.
PROMPT_MAX_CHARS = 1_000
