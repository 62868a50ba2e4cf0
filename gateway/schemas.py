"""Request and response bodies of the /v1/ JSON API, as the seed page documents them."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, WithJsonSchema

from speechmesh.common import limits
from speechmesh.common.text import text_problem

Gender = Literal["male", "female", "neutral"]


def _speakable(text: str) -> str:
    problem = text_problem(text)
    if problem:
        raise ValueError(problem)
    return text


# Text to speak: the seed's `text` and OpenAI's `input` refuse the same blank strings and
# characters. The longest text any plan allows is in the schema; the caller's plan limit
# is checked by the route (400 naming the plan).
_CONTROL = r"\u0000-\u0008\u000e-\u001f\u007f-\u009f"
SpeechText = Annotated[
    str,
    AfterValidator(_speakable),
    WithJsonSchema(
        {
            "type": "string",
            "minLength": 1,
            "maxLength": limits.TEXT_MAX_CHARS,
            # Something other than whitespace, and no control characters.
            "pattern": f"^[^{_CONTROL}]*[^\\s{_CONTROL}][^{_CONTROL}]*$",
        }
    ),
]
# Ids and codes a client names (model, voice, language): short; an unknown one is a 404/400.
Identifier = Annotated[str, Field(max_length=limits.ID_MAX_CHARS)]


class TtsRequest(BaseModel):
    # Strict: JSON types as the schema states them ("stream": 0 or "true" is a 400).
    model_config = ConfigDict(extra="ignore", strict=True)

    model: Identifier | None = Field(
        None, description="Model id (see /v1/models/); default: the server's default.", examples=["piper", "kokoro"]
    )
    text: SpeechText = Field(description="Text to speak; at most the plan's limit (Pro 5,000, Enterprise 50,000).")
    voice: Identifier | None = Field(
        None,
        description="Voice id (see /v1/voices/); default: the model's voice for the language.",
        examples=["en_US-joe-medium", "af_bella"],
    )
    format: Literal["mp3", "wav", "flac", "ogg"] = Field("mp3", description="Output format.")
    speed: float = Field(limits.SPEED_DEFAULT, ge=limits.SPEED_MIN, le=limits.SPEED_MAX, description="Speaking rate.")
    language: Identifier | None = Field(None, description="ISO 639-1 code; default: detected from the text.")
    stream: bool = Field(False, description="Send audio while it is being synthesized.")
    timestamps: bool = Field(
        False, description="Answer JSON: the audio as base64 plus every word's start and end (not with stream)."
    )


class ErrorDetail(BaseModel):
    model_config = ConfigDict(extra="allow")

    code: str = Field(description="bad_request, unauthorized, forbidden, not_found, file_too_large, ...")
    message: str = Field(description="What went wrong, for a person to read.")
    # Further fields name what the error is about: param, model, voice, list_url, max_bytes, ...


WebhookUrl = Annotated[str, Field(max_length=2048)]
WEBHOOK_URL_DESCRIPTION = (
    "Where to POST the signed result when the task ends (a public http(s) URL); "
    "the request then answers 202 with the task at once."
)
BATCH_TEXTS_MAX = 100


class TtsBatchRequest(BaseModel):
    """Many texts in one task; the result is a ZIP of one audio file per text (001.mp3, ...)."""

    model_config = ConfigDict(extra="ignore", strict=True)

    texts: list[SpeechText] = Field(
        min_length=1,
        max_length=BATCH_TEXTS_MAX,
        description="Texts to speak, each at most the plan's limit; at most 100.",
    )
    model: Identifier | None = Field(None, description="Model id; default: the service's.")
    voice: Identifier | None = Field(None, description="Voice id (see /v1/voices/).")
    format: Literal["mp3", "wav", "flac", "ogg"] = Field("mp3", description="Output format of every file.")
    speed: float = Field(limits.SPEED_DEFAULT, ge=limits.SPEED_MIN, le=limits.SPEED_MAX, description="Speaking rate.")
    language: Identifier | None = Field(None, description="ISO 639-1 code; default: detected per text.")
    webhook_url: WebhookUrl | None = Field(None, description=WEBHOOK_URL_DESCRIPTION)


class TaskOut(BaseModel):
    """A task: what a 202 answers and GET /v1/tasks/{task_id} shows."""

    task_id: str = Field(description="The task's id: task_ and 32 url-safe characters.")
    status: Literal["queued", "running", "success", "failed"] = Field(description="Where the task is.")
    progress: float = Field(description="0 to 1.")
    created_at: str = Field(description="When it was accepted, UTC: 2025-01-15T10:30:00Z.")
    completed_at: str | None = Field(description="When it ended (UTC); null until then.")
    credits_used: int = Field(description="Charged when the task succeeded; 0 until then and on failure.")
    status_url: str = Field(description="GET it for the task's state.")
    result_url: str | None = Field(description="Once it succeeded: the result, for 24 hours.")
    error: ErrorDetail | None = Field(None, description="Why it failed: the error the request would have got.")


class TimedWordOut(BaseModel):
    word: str = Field(description="A whitespace-separated word of the text, as written.")
    start: float = Field(description="Seconds from the start of the audio.")
    end: float = Field(description="Seconds from the start of the audio.")


class TtsTimestampsOut(BaseModel):
    """POST /v1/tts/ with `timestamps`: the audio and when each word is spoken."""

    audio_base64: str = Field(description="The audio file, base64.")
    content_type: str = Field(description="Its media type: audio/mpeg, audio/wav, ...")
    duration: float = Field(description="Seconds of audio.")
    model: str = Field(description="The model that spoke.")
    voice: str = Field(description="The voice that spoke (an alias names its real voice).")
    language: str = Field(description="The language spoken.")
    words: list[TimedWordOut] = Field(description="Every word of the text, in order.")
    alignment: str = Field(description="How the times were found: whisper-forced (see docs/api.md).")


class ModelOut(BaseModel):
    id: str = Field(description="The id requests name (model, tts_model).")
    name: str = Field(description="Its display name.")
    type: str = Field(description="tts, stt, audio, voice_conversion or chat.")
    tier: str = Field(description="Price tier: free, standard or premium.")
    languages: list[str] = Field(description="ISO 639-1 codes it speaks or hears.")
    supports_cloning: bool = Field(description="Whether /v1/tts/clone/ can use it.")
    supports_streaming: bool = Field(description="Whether it can stream (stream=true).")
    credits_per_1k_chars: int | None = Field(description="TTS models: credits per started 1,000 characters.")
    status: Literal["ready", "loading", "unavailable"] = Field(description="Whether it serves now.")
    unavailable_reason: str | None = Field(None, description="Why an unavailable model is (e.g. no weights).")


class ModelsOut(BaseModel):
    """The models this server documents, with their state."""

    models: list[ModelOut] = Field(description="Every documented model, with its state.")


class VoiceOut(BaseModel):
    id: str = Field(description="The id requests name (voice, target_voice).")
    name: str = Field(description="Its display name.")
    model: str = Field(description="The model that speaks it.")
    language: str = Field(description="Its own language (ISO 639-1 or locale).")
    gender: Gender = Field(description="male, female or neutral.")
    preview_url: str = Field(description="A signed URL of a short sample (MP3), playable without a key for a day.")
    alias_of: str | None = Field(
        None,
        description="For a voice id of the hosted API that is not installed here: the id of the installed "
        "voice that speaks for it (and is named in X-Voice).",
    )


class VoicesOut(BaseModel):
    """The voices that match the filters."""

    voices: list[VoiceOut] = Field(description="The voices that match the filters.")
    total: int = Field(description="How many there are.")


class SttWordOut(BaseModel):
    word: str = Field(description="The word as heard (with its leading space).")
    start: float = Field(description="Seconds from the start of the audio.")
    end: float = Field(description="Seconds from the start of the audio.")
    probability: float = Field(description="The recognizer's confidence, 0 to 1.")
    speaker: str | None = Field(None, description="SPEAKER_00, SPEAKER_01, ... with diarize=true; else null.")


class SttSegmentOut(BaseModel):
    start: float = Field(description="Seconds from the start of the audio.")
    end: float = Field(description="Seconds from the start of the audio.")
    text: str = Field(description="What was said in the segment.")
    # None unless diarize=true: no speaker is claimed without diarization.
    speaker: str | None = Field(description="SPEAKER_00, SPEAKER_01, ... with diarize=true; else null.")
    language: str = Field(
        description="ISO 639-1 language of the segment: the one given, else the one detected for it "
        "(people in one recording may speak different languages)."
    )


class SttResponse(BaseModel):
    """The transcript: text, language, duration and timed segments."""

    text: str = Field(description="The whole transcript.")
    language: str = Field(description="ISO 639-1 code of the language spoken (given or detected).")
    duration: float = Field(description="Seconds of audio.")
    segments: list[SttSegmentOut] = Field(description="The transcript in timed pieces.")
    words: list[SttWordOut] | None = Field(None, description="Present when timestamps=true.")


class OpenAISpeechRequest(BaseModel):
    """OpenAI's POST /v1/audio/speech body."""

    model_config = ConfigDict(extra="ignore", strict=True)

    model: Identifier = Field(description="tts-1, tts-1-hd, gpt-4o-mini-tts, or any speechmesh TTS model id.")
    input: SpeechText = Field(description="Text to speak; at most the plan's limit.")
    voice: Identifier = Field(
        description="alloy, ash, ballad, coral, echo, fable, nova, onyx, sage, shimmer, verse, ..."
    )
    response_format: Literal["mp3", "opus", "aac", "flac", "wav", "pcm"] = Field(
        "mp3", description="Audio format; pcm: headerless 16-bit little-endian mono at 24 kHz."
    )
    speed: float = Field(
        1.0,
        ge=limits.SYNTHESIS_SPEED_MIN,
        le=limits.SYNTHESIS_SPEED_MAX,
        description="Speaking rate; beyond 0.5-2.0 the audio is time-stretched (pitch kept).",
    )
    instructions: str | None = Field(
        None,
        max_length=limits.INSTRUCTIONS_MAX_CHARS,
        description="Accepted; no installed engine follows style instructions.",
    )
    stream_format: Literal["audio", "sse"] = Field(
        "audio", description="audio: the file as it is synthesized; sse: speech.audio.delta events."
    )


class ErrorOut(BaseModel):
    """Every error's body."""

    error: ErrorDetail = Field(description="The error: its code, message and what it is about.")


# Multipart bodies. The gateway parses them as they stream (gateway/uploads.py); these
# models only describe them in the OpenAPI document.
AudioFile = Annotated[bytes, WithJsonSchema({"type": "string", "format": "binary"})]
Flag = Annotated[bool, Field(description="true/false (also 1/0, yes/no).")]


class SttForm(BaseModel):
    file: AudioFile = Field(description="Audio: MP3, WAV, FLAC, OGG, M4A, MP4, WebM, ...; at most 100 MB.")
    model: Identifier = Field(
        "whisper",
        description="whisper (Whisper base), faster-whisper (tiny.en), whisper-1; see /v1/models/.",
        examples=["whisper", "faster-whisper"],
    )
    language: Identifier = Field("auto", description="ISO 639-1 code, or auto to detect it.", examples=["en", "auto"])
    timestamps: Flag = Field(False, description="Add words[] with each word's times (true/false, 1/0, yes/no).")
    diarize: Flag = Field(False, description="Label each segment's speaker (true/false, 1/0, yes/no).")
    vad_filter: Flag = Field(True, description="Skip non-speech with Silero VAD.")
    min_speakers: int = Field(0, ge=0, le=limits.SPEAKERS_MAX, description="0: estimate.")
    max_speakers: int = Field(0, ge=0, le=limits.SPEAKERS_MAX, description="0: estimate.")
    webhook_url: WebhookUrl | None = Field(None, description=WEBHOOK_URL_DESCRIPTION)


class CloneForm(BaseModel):
    reference_audio: AudioFile = Field(description="10-30 s of one speaker (the first 60 s are used); at most 20 MB.")
    text: SpeechText = Field(description="What the cloned voice says; at most the plan's limit.")
    model: Identifier = Field("world-adapt", description="world-adapt; chatterbox, cosyvoice2, gpt-sovits: 404.")
    format: Literal["mp3", "wav", "flac"] = Field("mp3", description="Output format.")
    language: Identifier = Field("", description="ISO 639-1 code; detected when empty.")


class OpenAITranslationForm(BaseModel):
    file: AudioFile = Field(description="Audio in any language, at most 100 MB.")
    model: Identifier = Field(description="whisper-1, or any speechmesh STT model id.", examples=["whisper-1"])
    prompt: str = Field("", max_length=limits.PROMPT_MAX_CHARS, description="Text that guides the style or spelling.")
    response_format: Literal["json", "text", "srt", "vtt", "verbose_json"] = Field(
        "json", description="json: {text, usage}; verbose_json: segments too; text, srt, vtt: plain text."
    )
    temperature: float = Field(
        0.0, ge=limits.TEMPERATURE_MIN, le=limits.TEMPERATURE_MAX, description="Sampling temperature; 0: greedy."
    )


class OpenAITranscriptionForm(OpenAITranslationForm):
    """A translation's fields, plus the spoken language and the timestamp granularities."""

    language: Identifier = Field("", description="ISO 639-1 code; detected when empty.")
    timestamp_granularities: list[Literal["word", "segment"]] = Field(
        [], alias="timestamp_granularities[]", description="With verbose_json: word and/or segment."
    )


# The audio tools (gateway/routers/audio_tools.py, gateway/routers/voice_changer.py).
ToolFormat = Literal["mp3", "wav", "flac", "ogg", "m4a", "aac"]


class EnhanceForm(BaseModel):
    file: AudioFile = Field(description="Audio to enhance (any container FFmpeg reads); at most 100 MB.")
    denoise: Flag = Field(True, description="Remove background noise.")
    enhance_clarity: Flag = Field(True, description="High-pass, presence EQ, loudness to -16 LUFS, -1 dBTP peaks.")
    super_resolution: Flag = Field(False, description="Bandwidth extension: not available here (true: 400).")
    strength: int = Field(2, ge=1, le=3, description="1 light, 2 medium, 3 strong: the denoiser's attenuation limit.")
    model: Identifier = Field("deepfilternet3", description="Denoiser: deepfilternet3 or rnnoise.")
    format: ToolFormat | None = Field(None, description="Output format; default: the input's.")


class DereverbForm(BaseModel):
    file: AudioFile = Field(description="Audio to process; at most 100 MB.")
    type: Literal["echo", "reverb", "both"] = Field("both", description="What to remove.")
    intensity: int = Field(3, ge=1, le=5, description="1 light - 5 strong.")
    format: ToolFormat | None = Field(None, description="Output format; default: the input's.")


class SeparateForm(BaseModel):
    file: AudioFile = Field(description="Music to split; at most 100 MB.")
    model: Identifier = Field(
        "repet-hpss", description="repet-hpss (DSP, 2 or 4 stems); demucs with its weights installed; spleeter: 404."
    )
    stems: Literal[2, 4, 5, 6] = Field(2, description="2: vocals + accompaniment; 4: vocals, drums, bass, other.")
    format: Literal["wav", "mp3", "flac"] = Field("wav", description="Format of each stem file in the ZIP.")
    webhook_url: WebhookUrl | None = Field(None, description=WEBHOOK_URL_DESCRIPTION)


class AnalyzeForm(BaseModel):
    file: AudioFile = Field(description="Music to analyse (the first 10 minutes are); at most 100 MB.")


class AnalyzeResponse(BaseModel):
    """The song's key, tempo and meter."""

    key: str = Field(description="The tonic, with sharps (C#, never Db).", examples=["C"])
    scale: Literal["Major", "Minor"] = Field(description="The mode.")
    bpm: float = Field(description="Tempo in beats per minute (50-220).", examples=[120.0])
    time_signature: str = Field(description="3/4 or 4/4.", examples=["4/4"])
    camelot: str = Field(description="The key's Camelot wheel code.", examples=["8B"])
    compatible_keys: list[str] = Field(
        description="Keys that mix well: itself, a fifth up, a fifth down, the relative key.",
        examples=[["C Major", "G Major", "F Major", "A Minor"]],
    )


class ConvertForm(BaseModel):
    file: AudioFile = Field(description="Audio to convert; at most 100 MB.")
    format: ToolFormat = Field(description="Target format.")
    bitrate: Literal[64, 128, 192, 256, 320] | None = Field(None, description="kbit/s of lossy formats.")
    sample_rate: Literal[22050, 44100, 48000] | None = Field(None, description="Default: the input's.")
    channels: Literal["mono", "stereo"] | None = Field(None, description="Default: the input's (ogg: stereo only).")


class VoiceConvertForm(BaseModel):
    file: AudioFile = Field(description="Speech: MP3, WAV, FLAC, ...; at most 50 MB.")
    target_voice: Identifier = Field(description="A voice id from /v1/voices/.", examples=["jf_alpha"])
    model: Identifier = Field("world-convert", description="world-convert; openvoice, knn-vc: 404 (no weights).")
    format: Literal["wav", "mp3", "flac"] = Field("wav", description="Output format.")


class SpeechToSpeechForm(BaseModel):
    file: AudioFile = Field(description="Speech; at most 50 MB.")
    voice: Identifier = Field("", description="A voice id from /v1/voices/ to convert to; empty keeps the speaker.")
    model: Identifier = Field("world-prosody", description="world-prosody; openvoice, chatterbox: 404 (no weights).")
    emotion: Literal["neutral", "happy", "sad", "angry", "excited"] = Field(
        "neutral", description="Target delivery: a prosody transform of the speaker's own voice."
    )
    speed: float = Field(
        limits.SPEED_DEFAULT,
        ge=limits.SPEED_MIN,
        le=limits.SPEED_MAX,
        description="Pace multiplier (pitch kept).",
    )
    format: ToolFormat | None = Field(None, description="Output format; default: the input's.")


ChatFormat = Literal["mp3", "wav", "flac", "ogg", "opus", "aac"]
ConversationId = Annotated[str, Field(max_length=64)]
SystemPrompt = Annotated[str, Field(max_length=4000)]
TurnText = Annotated[str, Field(max_length=4000)]


class VoiceChatBody(BaseModel):
    """The JSON form of a voice-chat turn (text only; speech comes as multipart)."""

    model_config = ConfigDict(extra="ignore", strict=True)

    text: TurnText = Field(description="The user's turn as text, at most 4,000 characters.")
    voice: Identifier | None = Field(
        None,
        description="Voice of the reply (see /v1/voices/); default: jf_nezumi, or a voice of the reply's language.",
    )
    tts_model: Identifier | None = Field(None, description="TTS model of the reply; default: kokoro.")
    system_prompt: SystemPrompt | None = Field(None, description="Instructions for the assistant (4,000 characters).")
    conversation_id: ConversationId | None = Field(None, description="Continue this conversation of your key's.")
    language: Identifier | None = Field(None, description="ISO 639-1 language of the text; default: the last turn's.")
    format: ChatFormat = Field("mp3", description="Format of the reply's audio.")
    stream: bool = Field(False, description="Answer server-sent events: transcript, text, audio chunks, done.")


class VoiceChatForm(BaseModel):
    audio: AudioFile | None = Field(None, description="The user's speech (either audio or text); at most 100 MB.")
    text: TurnText | None = Field(None, description="The user's turn as text (either audio or text).")
    voice: Identifier | None = Field(None, description="Voice of the reply; default: jf_nezumi.")
    tts_model: Identifier | None = Field(None, description="TTS model of the reply; default: kokoro.")
    system_prompt: SystemPrompt | None = Field(None, description="Instructions for the assistant (4,000 characters).")
    conversation_id: ConversationId | None = Field(None, description="Continue this conversation of your key's.")
    language: Identifier | None = Field(None, description="ISO 639-1 language spoken; default: detected.")
    format: ChatFormat = Field("mp3", description="Format of the reply's audio.")
    stream: Flag = Field(False, description="Answer server-sent events: transcript, text, audio chunks, done.")


class VoiceChatOut(BaseModel):
    """The turn: what was said, the reply and where its speech is."""

    conversation_id: str = Field(description="Send it back to continue the conversation.")
    user_text: str = Field(description="What the user said (the transcript) or wrote.")
    ai_text: str = Field(description="The assistant's reply.")
    audio_url: str = Field(description="The reply's audio: readable by this key for 24 hours.")
    credits_used: int = Field(description="Credits this turn cost (3).")


class SpeechTranslateForm(BaseModel):
    file: AudioFile = Field(description="Speech in the original language; at most 100 MB.")
    target_language: Identifier = Field("en", description="ISO 639-1 target (en from any language; es, ca, ...).")
    voice: Identifier | None = Field(None, description="Voice of the translation; default: one of its language.")
    preserve_voice: Flag = Field(False, description="Move the translation toward the original speaker's voice.")
    source_language: Identifier | None = Field(None, description="ISO 639-1 language spoken; default: detected.")
    format: ChatFormat = Field("mp3", description="Format of the translated speech.")


class SpeechTranslateOut(BaseModel):
    """The transcript, its translation and where the translated speech is."""

    original_text: str = Field(description="What was said, transcribed.")
    translated_text: str = Field(description="Its translation.")
    source_language: str = Field(description="ISO 639-1 code of the language spoken.")
    target_language: str = Field(description="ISO 639-1 code of the translation.")
    audio_url: str = Field(description="The translated speech: readable by this key for 24 hours.")
    credits_used: int = Field(description="Credits charged (5 a started minute of input).")
