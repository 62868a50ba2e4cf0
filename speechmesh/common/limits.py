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
# Largest file the audio tools (enhance, dereverb, separate, analyze, convert) accept: the
# page states none for them; its other audio uploads go up to 100 MB.
AUDIO_UPLOAD_MAX_BYTES = 100 * 1024 * 1024
# Largest speech file voice conversion and speech-to-speech accept (the page's "Max 50MB").
SPEECH_UPLOAD_MAX_BYTES = 50 * 1024 * 1024
# Largest reference recording a clone accepts (the page's "max 20MB", read as MiB).
CLONE_REFERENCE_MAX_BYTES = 20 * 1024 * 1024
# Largest conditioning prompt a transcription accepts.
PROMPT_MAX_CHARS = 1_000

# Sample rates and channel counts a decoded upload may have. 8 kHz is the contract's own
# minimum (telephone audio); 192 kHz is the highest rate recorders write. A header outside
# them is a lie or an attack: a WAV claiming 1 Hz "lasts" a day per 170 KB and would
# resample to billions of samples.
INPUT_SAMPLE_RATE_MIN_HERTZ = 8_000
INPUT_SAMPLE_RATE_MAX_HERTZ = 192_000
# 7.1.4 and third-order ambisonic recordings (16) stay below this; FFmpeg itself takes 512.
INPUT_CHANNELS_MAX = 32

# Most speakers a diarization may be told to expect (min_speakers / max_speakers).
SPEAKERS_MAX = 32
# Whisper's sampling temperature range.
TEMPERATURE_MIN = 0.0
TEMPERATURE_MAX = 1.0
# Longest model id, voice id or language code a request may name.
ID_MAX_CHARS = 100
# Longest style instruction OpenAI's speech route accepts (OpenAI's own limit).
INSTRUCTIONS_MAX_CHARS = 4096
