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

Two more passes keep every turn. A chunk's language is its own, not the file's first
chunk's; one Whisper is unsure of is split where its clips' languages change, so each
person is transcribed in the language they speak (whisper_languages.py). And a clip of a
chunk that the chunk's text left mostly without words (aligned words cover under 30% of
it; 79-95% of a clip is covered on speech the chunk did transcribe) is decoded alone: in
English/Italian dialogs of Asterisk's prompts, decoded whole the chunk dropped 1-5 of six
turns, Italian or English, even where Whisper was sure of one language for it. Speech in
one language, transcribed whole, comes out as before, word for word and time for time.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from math import ceil
from typing import TYPE_CHECKING, Any

import numpy as np

from services.stt.engines import whisper_languages
from services.stt.engines.whisper_batch import DecodeBatcher
from services.stt.engines.whisper_languages import Detected
from services.stt.recognizer import SAMPLE_RATE, RecognitionOptions, Segment, Transcript, Word
from services.stt.windows import spans
from speechmesh.common.cancel import checkpoint

if TYPE_CHECKING:
    from faster_whisper import WhisperModel
    from faster_whisper.tokenizer import Tokenizer

# Whisper hears 30 s at a time.
CHUNK_SECONDS = 30
# Mel frames (10 ms each) a clip is encoded in for its language alone (`_glimpse`).
_GLIMPSE_FRAMES = 1000
# A clip whose words last less than this share of it is speech left without text
# (`_uncovered`).
_WORDS_SHARE = 0.3
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


class _Speech:
    """The voice-activity clips of one file and the speech timeline they make joined, on
    which Whisper's times of a unit are counted."""

    def __init__(self, audio: np.ndarray, clips: list[dict[str, int]]) -> None:
        self.audio = audio
        self.clips = clips
        self.samples = [clip["end"] - clip["start"] for clip in clips]
        self.offsets = np.concatenate([[0], np.cumsum(self.samples)]) / SAMPLE_RATE

    def seconds(self, i: int) -> float:
        return self.samples[i] / SAMPLE_RATE

    def unit(self, first: int, last: int) -> _Unit:
        joined = np.concatenate([self.audio[clip["start"] : clip["end"]] for clip in self.clips[first : last + 1]])
        return _Unit(first, last, joined, float(self.offsets[first]))


@dataclass
class _Unit:
    """Consecutive clips decoded together, in one language."""

    first: int  # index of its first clip
    last: int  # index of its last clip, inclusive
    audio: np.ndarray  # the clips' samples, joined
    offset: float  # where it starts on the speech timeline, seconds
    encoded: np.ndarray | None = None
    language: str = ""
    probability: float = 0.0

    @property
    def meta(self) -> dict[str, Any]:
        return {"offset": self.offset, "duration": len(self.audio) / SAMPLE_RATE}


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
    from faster_whisper.vad import SpeechTimestampsMap

    duration = len(audio) / SAMPLE_RATE
    clips = _clips(audio, options.vad_filter)
    if not clips:
        language, probability = _language(model, options.language, audio)
        return Transcript(text="", language=language, language_probability=probability, duration=duration)
    times = SpeechTimestampsMap(clips, SAMPLE_RATE)
    speech = _Speech(audio, clips)
    given = _language(model, options.language, None)[0]
    found: list[tuple[Segment, str, _Unit]] = []
    first: _Unit | None = None
    packed = [speech.unit(a, b) for a, b in _pack(speech.samples, range(len(clips)), set())]
    for start in range(0, len(packed), batch_size):
        checkpoint()
        batch = packed[start : start + batch_size]
        for unit, encoded in zip(batch, _encoded(model, [unit.audio for unit in batch]), strict=True):
            unit.encoded = encoded
        units = [part for unit in batch for part in _by_language(model, speech, unit, given)]
        first = first or units[0]
        results = _transcribed(model, batcher, units, options, beam_size)
        # Speech the text of its unit left without a word is decoded alone: Whisper skips a
        # turn now and then (an English turn between English turns, on real speech), and
        # alone it has nothing else to write.
        gaps = [_uncovered(speech, unit, words) for unit, (_, words) in zip(units, results, strict=True)]
        missed = [_alone(model, speech, unit, i, given) for unit, clips in zip(units, gaps, strict=True) for i in clips]
        results += _transcribed(model, batcher, missed, options, beam_size)
        for unit, (decoded, words), skipped in zip(
            [*units, *missed], results, [*gaps, *[[]] * len(missed)], strict=True
        ):
            text = _tokenizer(model, options, unit.language).decode(decoded.tokens)
            if not text.strip() or decoded.silent:
                continue
            if not skipped:
                placed = words if options.word_timestamps else []
                found.append((_segment(text.strip(), decoded, unit, placed, times), text, unit))
                continue
            # Its text is cut where the clips decoded alone lie, so segments do not overlap.
            for run in _runs(speech, words, skipped):
                piece = "".join(word["word"] for word in run)
                placed = run if options.word_timestamps else []
                segment = _segment(piece.strip(), decoded, unit, placed, times, whole=False)
                found.append((segment, piece, unit))
    found.sort(key=lambda item: item[0].start)
    assert first is not None
    if found:
        language, probability = _dominant([(segment, unit) for segment, _, unit in found])
    else:
        language, probability = first.language, first.probability
    return Transcript(
        # Whisper's texts carry their own leading spaces (none in CJK).
        text="".join(text for _, text, _ in found).strip(),
        language=language,
        language_probability=probability,
        duration=duration,
        segments=tuple(segment for segment, *_ in found),
    )


def _pack(samples: list[int], indices: Iterable[int], breaks: set[int]) -> list[tuple[int, int]]:
    """Runs of consecutive clips of at most CHUNK_SECONDS (faster-whisper's collect_chunks
    packs the same way), a new one at each index in `breaks`."""
    runs: list[list[int]] = []
    total = 0
    for i in indices:
        if not runs or i in breaks or total + samples[i] > CHUNK_SECONDS * SAMPLE_RATE:
            runs.append([i, i])
            total = 0
        runs[-1][1] = i
        total += samples[i]
    return [(a, b) for a, b in runs]


def _by_language(model: WhisperModel, speech: _Speech, unit: _Unit, given: str) -> list[_Unit]:
    """`unit` with its language, or, when Whisper is unsure of it, split where its clips'
    languages change (whisper_languages.py)."""
    if given:
        unit.language, unit.probability = given, 1.0
        return [unit]
    assert unit.encoded is not None
    chunk = _detected(model, unit.encoded[None])
    if chunk.sure or unit.first == unit.last:
        unit.language, unit.probability = chunk.language, chunk.probability
        return [unit]
    indices = range(unit.first, unit.last + 1)
    detected = [
        _detected(model, _glimpse(model, speech.unit(i, i).audio))
        if speech.seconds(i) >= whisper_languages.CLIP_SECONDS
        else None
        for i in indices
    ]
    chosen = whisper_languages.clip_languages(chunk, [speech.seconds(i) for i in indices], detected)
    breaks = {indices[k] for k in range(1, len(indices)) if chosen[k][0] != chosen[k - 1][0]}
    parts = []
    for a, b in _pack(speech.samples, indices, breaks):
        part = unit if (a, b) == (unit.first, unit.last) else speech.unit(a, b)
        part.language, part.probability = chosen[a - unit.first]
        if part.encoded is None:
            part.encoded = _encoded(model, [part.audio])[0]
        parts.append(part)
    return parts


def _glimpse(model: WhisperModel, clip: np.ndarray) -> np.ndarray:
    """`clip` encoded for language detection only: at least 10 s of it and the silence after
    it, not Whisper's 30 s. CTranslate2 takes the shorter input at a tenth of the cost (40 vs
    400 ms, Whisper base, 2 threads), and on Asterisk's English and Italian prompts (1.5-3.7
    s clips) detection agreed with the padded encoding or was surer; the clip's own frames
    alone were not enough below 2 s ("Agent login", 1.5 s: Tagalog at 0.86). Decoding keeps
    the padded encoding: its transcripts are what the tests measured."""
    own = 2 * ceil(len(clip) / (2 * model.feature_extractor.hop_length))
    frames = min(model.feature_extractor.nb_max_frames, max(_GLIMPSE_FRAMES, own))
    features = np.ascontiguousarray(_features(model, clip)[..., :frames])
    return np.array(model.encode(features[None]))


def _alone(model: WhisperModel, speech: _Speech, unit: _Unit, i: int, given: str) -> _Unit:
    """Clip `i` of `unit` as a unit of its own, in the unit's language unless sure of another."""
    alone = speech.unit(i, i)
    alone.encoded = _encoded(model, [alone.audio])[0]
    alone.language, alone.probability = unit.language, unit.probability
    if not given:
        detected = _detected(model, alone.encoded[None])
        alone.language, alone.probability = detected.choice((unit.language, detected.language), unit.language)
    return alone


def _uncovered(speech: _Speech, unit: _Unit, words: list[dict[str, Any]]) -> list[int]:
    """Clips of a unit of several whose speech (at least CLIP_SECONDS) is mostly without
    words: none, or only a neighbour's word aligned into its edge (Carlo's Italian turn lent
    its first word to the end of an English turn the chunk had skipped)."""
    if unit.first == unit.last:
        return []  # decoding it alone again would write the same
    missed = []
    for i in range(unit.first, unit.last + 1):
        start, end = speech.offsets[i], speech.offsets[i + 1]
        spoken = sum(max(0.0, min(end, word["end"]) - max(start, word["start"])) for word in words)
        if end - start >= whisper_languages.CLIP_SECONDS and spoken < _WORDS_SHARE * (end - start):
            missed.append(i)
    return missed


def _runs(speech: _Speech, words: list[dict[str, Any]], skipped: list[int]) -> list[list[dict[str, Any]]]:
    """`words` cut where the `skipped` clips are; a word aligned into a skipped clip goes
    with the words after it (the turn it opens), or before it at the end."""
    bounds = [speech.offsets[i + 1] for i in skipped]
    runs: list[list[dict[str, Any]]] = [[] for _ in range(len(bounds) + 1)]
    for word in words:
        middle = (word["start"] + word["end"]) / 2
        runs[sum(middle > bound for bound in bounds)].append(word)
    if words and not runs[-1]:
        runs[-2].extend(runs.pop())
    return [run for run in runs if run]


def _transcribed(
    model: WhisperModel, batcher: DecodeBatcher, units: list[_Unit], options: RecognitionOptions, beam_size: int
) -> list[tuple[_Decoded, list[dict[str, Any]]]]:
    """Each unit decoded in its language, with its words aligned (on the speech timeline)
    when they are asked for or a unit of several clips is checked for speech without words
    (aligning a 7 s file's words cost a third of its transcription): units of one language
    share a tokenizer and a decoding batch."""
    results: list[tuple[_Decoded, list[dict[str, Any]]] | None] = [None] * len(units)
    for language in dict.fromkeys(unit.language for unit in units):
        group = [i for i, unit in enumerate(units) if unit.language == language]
        tokenizer = _tokenizer(model, options, language)
        encoded = np.stack([units[i].encoded for i in group])  # type: ignore[misc]  # all encoded by now
        decoded = _decode(model, batcher, tokenizer, encoded, options, beam_size)
        aligned = [k for k, i in enumerate(group) if options.word_timestamps or units[i].first != units[i].last]
        words: list[list[dict[str, Any]]] = [[] for _ in group]
        if aligned:
            found = _words(
                model,
                tokenizer,
                encoded[aligned],
                [decoded[k] for k in aligned],
                [units[group[k]].meta for k in aligned],
            )
            for k, unit_words in zip(aligned, found, strict=True):
                words[k] = unit_words
        for i, result, unit_words in zip(group, decoded, words, strict=True):
            results[i] = (result, unit_words)
    return [result for result in results if result is not None]


def _dominant(found: list[tuple[Segment, _Unit]]) -> tuple[str, float]:
    """The language of most of the transcribed speech, with the probability of its first
    unit (for one language: the first chunk's, what faster-whisper reports)."""
    seconds: dict[str, float] = {}
    for segment, unit in found:
        seconds[unit.language] = seconds.get(unit.language, 0.0) + segment.end - segment.start
    language = max(seconds, key=lambda candidate: seconds[candidate])
    return language, next(unit.probability for _, unit in found if unit.language == language)


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
        detected = _detected(model, _encoded(model, [silent_audio[: CHUNK_SECONDS * SAMPLE_RATE]]))
        return detected.language, detected.probability
    return "", 0.0


def _detected(model: WhisperModel, encoded: np.ndarray) -> Detected:
    """Whisper's language probabilities for one encoded chunk."""
    ranked = model.model.detect_language(_storage(encoded[:1]))[0]
    return Detected(tuple((token[2:-2], float(probability)) for token, probability in ranked))  # "<|fr|>" -> "fr"


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


def _segment(
    text: str, result: _Decoded, unit: _Unit, words: list[dict[str, Any]], times: Any, whole: bool = True
) -> Segment:
    """A unit's segment (or, not `whole`, a piece of it: its tokens are the unit's), with
    times on the original audio."""
    meta = unit.meta
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
        tokens=tuple(result.tokens) if whole else (),
        language=unit.language,
    )
