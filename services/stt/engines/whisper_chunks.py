"""Whisper over voice-activity chunks, each decoded as text alone, in batches.

faster-whisper's sequential decoder (`WhisperModel.transcribe`) reads 30 s windows and
moves through them by the timestamp tokens it predicts. Its beam search can pick a
hypothesis that opens with <|0.00|> and then writes only what is said 14 s later: on
Asterisk's French prompt conf-adminmenu-menu8 (22.6 s, a single window, real telephone
speech, resampled to 16 kHz as faster-whisper's own decoder does) Whisper base returned
the last two of five sentences, with and without VAD, and the direct library call did the
same. Which inputs it happens on cannot be foreseen: PyAV's resampling of the same file
decoded whole. Here, as in faster-whisper's
`BatchedInferencePipeline`, speech found by Silero VAD is packed into chunks of at most
30 s and each chunk is decoded without timestamp tokens: the decoder has nothing to jump
with, so it writes all it hears. Chunks do not depend on each other, so a file's chunks
are encoded `batch_size` at a time (one by one: CTranslate2's encoder is slower on a
batch) and decoded together with the chunks of concurrent calls (whisper_batch.py).

Unlike that pipeline, this encodes a chunk once (the language is read from the first
chunk's encoding instead of a second encoder pass, which cost a 5 s file about 40% more,
and a chunk decoded again reuses its encoding), decodes a chunk whose text degenerates
again at the next temperature of Whisper's schedule, samples when the caller asks for a
temperature, and keeps no state between calls (the pipeline keeps the last word time on
itself: threads sharing one would mix).
A chunk is one segment; word times, when asked, come from the cross-attention alignment.
"""

from __future__ import annotations

from dataclasses import dataclass
from math import ceil
from typing import TYPE_CHECKING, Any

import numpy as np

from services.stt.engines.whisper_batch import DecodeBatcher
from services.stt.recognizer import SAMPLE_RATE, RecognitionOptions, Segment, Transcript, Word
from services.stt.windows import spans
from speechmesh.common.cancel import checkpoint

if TYPE_CHECKING:
    from faster_whisper import WhisperModel
    from faster_whisper.tokenizer import Tokenizer

# Whisper hears 30 s at a time.
CHUNK_SECONDS = 30
# Whisper's own tests of a failed decoding (faster-whisper's defaults): too repetitive, too
# unsure, or silence.
_COMPRESSION_RATIO_MAX = 2.4
_LOGPROB_MIN = -1.0
_NO_SPEECH_MIN = 0.6
# Whisper's temperature schedule after a failed greedy or beam decoding, and how many
# samples each temperature draws.
_FALLBACK_TEMPERATURES = (0.2, 0.4, 0.6, 0.8, 1.0)
_BEST_OF = 5
# Whisper's punctuation that joins the neighbouring word when word times are aligned
# (faster-whisper's defaults; the full-width marks are CJK's).
_PREPEND = "\"'“¿([{-"
_APPEND = "\"'.。,，!！?？:：”)]}、"  # noqa: RUF001


@dataclass(frozen=True)
class _Decoded:
    tokens: list[int]
    avg_logprob: float
    no_speech_prob: float
    compression_ratio: float
    temperature: float

    @property
    def silent(self) -> bool:
        return self.no_speech_prob > _NO_SPEECH_MIN and self.avg_logprob < _LOGPROB_MIN

    @property
    def failed(self) -> bool:
        unsure = self.avg_logprob < _LOGPROB_MIN
        return not self.silent and (self.compression_ratio > _COMPRESSION_RATIO_MAX or unsure)


def transcribe(
    model: WhisperModel,
    batcher: DecodeBatcher,
    audio: np.ndarray,
    options: RecognitionOptions,
    beam_size: int,
    batch_size: int,
) -> Transcript:
    """`audio` (float32 at 16 kHz) as a Transcript; a cancelled call stops between chunks.
    Called inside `batcher.transcribing()`, so the decoder waits for this call's chunks."""
    from faster_whisper.vad import SpeechTimestampsMap, collect_chunks

    clips = _clips(audio, options.vad_filter)
    chunks, metadata = collect_chunks(audio, clips, max_duration=CHUNK_SECONDS) if clips else ([], [])
    pieces = [(chunk, meta) for chunk, meta in zip(chunks, metadata, strict=True) if chunk.size]
    times = SpeechTimestampsMap(clips, SAMPLE_RATE)
    language, probability = _language(model, options.language, audio if not pieces else None)
    tokenizer: Tokenizer | None = None
    segments: list[Segment] = []
    texts: list[str] = []
    for start in range(0, len(pieces), batch_size):
        checkpoint()
        batch = pieces[start : start + batch_size]
        encoded = _encoded(model, [chunk for chunk, _ in batch])
        if not language:
            language, probability = _detected(model, encoded[:1])
        if tokenizer is None:
            tokenizer = _tokenizer(model, options, language)
        decoded = _decode(model, batcher, tokenizer, encoded, options, beam_size)
        metas = [meta for _, meta in batch]
        words = _words(model, tokenizer, encoded, decoded, metas) if options.word_timestamps else [[]] * len(batch)
        for result, meta, chunk_words in zip(decoded, metas, words, strict=True):
            text = tokenizer.decode(result.tokens)
            if text.strip() and not result.silent:
                segments.append(_segment(text.strip(), result, meta, chunk_words, times))
                texts.append(text)
    return Transcript(
        # Whisper's texts carry their own leading spaces (none in CJK).
        text="".join(texts).strip(),
        language=language,
        language_probability=probability,
        duration=len(audio) / SAMPLE_RATE,
        segments=tuple(segments),
    )


def _clips(audio: np.ndarray, vad: bool) -> list[dict[str, int]]:
    """Sample ranges to transcribe: the speech Silero VAD finds (cut at 160 ms pauses, at
    most 30 s, BatchedInferencePipeline's settings), or, unfiltered, all of the audio in
    pieces of at most 30 s that end in a pause (services/stt/windows.py)."""
    from faster_whisper.vad import VadOptions, get_speech_timestamps

    if audio.size == 0:
        return []
    if vad:
        found: list[dict[str, int]] = get_speech_timestamps(
            audio, VadOptions(max_speech_duration_s=CHUNK_SECONDS, min_silence_duration_ms=160)
        )
        return found
    return [{"start": start, "end": end} for start, end in spans(audio, CHUNK_SECONDS)]


def _features(model: WhisperModel, chunk: np.ndarray) -> np.ndarray:
    # The chunk padded with silence to Whisper's 30 s before the log-mel, as Whisper and
    # faster-whisper's sequential decoder pad: features padded with zeros afterwards
    # (BatchedInferencePipeline's way) are not silence once normalized, and cost words.
    padded = np.zeros(CHUNK_SECONDS * SAMPLE_RATE, np.float32)
    padded[: min(len(chunk), len(padded))] = chunk[: len(padded)]
    features: np.ndarray = model.feature_extractor(padded)[..., : model.feature_extractor.nb_max_frames]
    return features


def _encoded(model: WhisperModel, chunks: list[np.ndarray]) -> np.ndarray:
    """The encoder's output of each chunk (chunks x frames x width), encoded one at a time."""
    rows = []
    for chunk in chunks:
        checkpoint()
        rows.append(np.array(model.encode(_features(model, chunk)[None]))[0])
    return np.stack(rows)


def _storage(encoded: np.ndarray) -> Any:
    import ctranslate2

    return ctranslate2.StorageView.from_array(np.ascontiguousarray(encoded))


def _language(model: WhisperModel, given: str, silent_audio: np.ndarray | None) -> tuple[str, float]:
    """The language when it is known before decoding: given, English-only, or, for audio
    without speech, read from its first 30 s (nothing else will be encoded)."""
    if given:
        return given, 1.0
    if not model.model.is_multilingual:
        return "en", 1.0
    if silent_audio is not None and silent_audio.size:
        return _detected(model, _encoded(model, [silent_audio[: CHUNK_SECONDS * SAMPLE_RATE]]))
    return "", 0.0


def _detected(model: WhisperModel, encoded: np.ndarray) -> tuple[str, float]:
    """The likeliest language of the first encoded chunk (the file's first 30 s of speech,
    what faster-whisper detects on)."""
    token, probability = model.model.detect_language(_storage(encoded[:1]))[0][0]
    return token[2:-2], float(probability)  # "<|fr|>" -> "fr"


def _tokenizer(model: WhisperModel, options: RecognitionOptions, language: str) -> Tokenizer:
    from faster_whisper.tokenizer import Tokenizer

    return Tokenizer(model.hf_tokenizer, model.model.is_multilingual, task=options.task, language=language)


def _decode(
    model: WhisperModel,
    batcher: DecodeBatcher,
    tokenizer: Tokenizer,
    encoded: np.ndarray,
    options: RecognitionOptions,
    beam_size: int,
) -> list[_Decoded]:
    """Every chunk of the batch decoded at the first temperature; those that failed again
    at each next one, keeping the first success or else the likeliest."""
    previous = tokenizer.encode(" " + options.prompt.strip()) if options.prompt.strip() else []
    prompt = model.get_prompt(tokenizer, previous, without_timestamps=True)
    schedule = (options.temperature,) if options.temperature else (0.0, *_FALLBACK_TEMPERATURES)
    tries = [[attempt] for attempt in _generate(model, batcher, tokenizer, encoded, prompt, schedule[0], beam_size)]
    for temperature in schedule[1:]:
        failing = [i for i, attempts in enumerate(tries) if attempts[-1].failed]
        if not failing:
            break
        again = _generate(model, batcher, tokenizer, encoded[failing], prompt, temperature, beam_size)
        for i, attempt in zip(failing, again, strict=True):
            tries[i].append(attempt)
    return [_chosen(attempts) for attempts in tries]


def _chosen(attempts: list[_Decoded]) -> _Decoded:
    if not attempts[-1].failed:
        return attempts[-1]
    # Whisper's choice when every temperature failed: the likeliest text that does not repeat itself.
    plain = [attempt for attempt in attempts if attempt.compression_ratio <= _COMPRESSION_RATIO_MAX]
    return max(plain or attempts, key=lambda attempt: attempt.avg_logprob)


def _generate(
    model: WhisperModel,
    batcher: DecodeBatcher,
    tokenizer: Tokenizer,
    encoded: np.ndarray,
    prompt: list[int],
    temperature: float,
    beam_size: int,
) -> list[_Decoded]:
    from faster_whisper.transcribe import get_compression_ratio, get_suppressed_tokens

    if temperature:
        how: dict[str, Any] = dict(
            beam_size=1, num_hypotheses=_BEST_OF, sampling_topk=0, sampling_temperature=temperature
        )
    else:
        how = dict(beam_size=beam_size)
    how.update(
        max_length=model.max_length,
        return_scores=True,
        return_no_speech_prob=True,
        suppress_blank=True,
        suppress_tokens=get_suppressed_tokens(tokenizer, [-1]),
    )
    results = batcher.generate(encoded, prompt, tokenizer.sot, how)
    decoded = []
    for result in results:
        tokens = result.sequences_ids[0]
        # The score is the sum of log probabilities over the length (length penalty 1);
        # Whisper's average counts the end token too.
        average = result.scores[0] * len(tokens) / (len(tokens) + 1)
        ratio = get_compression_ratio(tokenizer.decode(tokens).strip())
        decoded.append(_Decoded(tokens, float(average), float(result.no_speech_prob), ratio, temperature))
    return decoded


def _words(
    model: WhisperModel,
    tokenizer: Tokenizer,
    encoded: np.ndarray,
    decoded: list[_Decoded],
    metas: list[dict[str, Any]],
) -> list[list[dict[str, Any]]]:
    """Each chunk's words with times in the chunked timeline (faster-whisper's alignment)."""
    fps = model.frames_per_second
    outputs = [
        [{"tokens": result.tokens, "start": meta["offset"], "end": meta["offset"] + meta["duration"],
          "seek": round(meta["offset"] * fps)}]
        for result, meta in zip(decoded, metas, strict=True)
    ]  # fmt: skip
    sizes = [int(ceil(meta["duration"]) * fps) for meta in metas]
    model.add_word_timestamps(outputs, tokenizer, _storage(encoded), sizes, _PREPEND, _APPEND, 0.0)
    return [output[0].get("words", []) for output in outputs]


def _segment(text: str, result: _Decoded, meta: dict[str, Any], words: list[dict[str, Any]], times: Any) -> Segment:
    """One chunk's segment, with times on the original audio."""
    placed = []
    for word in words:
        # A word's two ends are moved by the pause before the speech clip its middle is in.
        clip = times.get_chunk_index((word["start"] + word["end"]) / 2)
        start, end = times.get_original_time(word["start"], clip), times.get_original_time(word["end"], clip)
        placed.append(Word(word["word"], float(start), float(end), float(word["probability"])))
    if placed:
        start, end = placed[0].start, placed[-1].end
    else:
        start = times.get_original_time(meta["offset"])
        end = times.get_original_time(meta["offset"] + meta["duration"], is_end=True)
    return Segment(
        start=float(start),
        end=float(end),
        text=text,
        words=tuple(placed),
        avg_logprob=result.avg_logprob,
        compression_ratio=result.compression_ratio,
        no_speech_prob=result.no_speech_prob,
        temperature=result.temperature,
        tokens=tuple(result.tokens),
    )
