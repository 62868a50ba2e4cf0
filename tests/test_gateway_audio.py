"""The audio tools and the voice changer end to end: real HTTP through the gateway to the
real audio service (and, for target voices, the TTS service), real audio checked.

Engine quality is measured in the engines' own tests (tests/test_audio_*.py); here each
endpoint is checked for what only the whole path shows: the documented parameters and
defaults, formats out, credits by decoded minutes, every error as the documented JSON.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import AsyncIterator

import av
import httpx
import numpy as np
import pytest

from speechmesh.common.audio.encode import StreamEncoder, encode_audio
from speechmesh.common.audio.formats import FORMATS
from speechmesh.common.audio.pcm import Pcm
from speechmesh.common.audio.resample import resample
from tests.conftest import Gateway, decode, transcribe, word_error_rate

pytestmark = pytest.mark.slow

SENTENCE = "Please call Stella and ask her to bring these things with her from the store."


@pytest.fixture
def http(client: httpx.AsyncClient) -> httpx.AsyncClient:
    """The session's client: its gateway calls the session's audio service."""
    return client


@pytest.fixture(scope="module")
def speech(speak) -> Pcm:
    return speak(SENTENCE)


def _file(pcm: Pcm, fmt: str, **kwargs) -> bytes:
    return encode_audio(pcm, FORMATS[fmt], **kwargs)


async def _post(client: httpx.AsyncClient, path: str, data: bytes, filename: str = "in.wav", **fields):
    return await client.post(path, files={"file": (filename, data)}, data={k: str(v) for k, v in fields.items()})


def _stream_info(data: bytes) -> tuple[str, str, int, int, float, int]:
    """Container, codec, rate, channels, duration (s) and bit rate of an encoded file."""
    with av.open(io.BytesIO(data)) as container:
        stream = container.streams.audio[0]
        frames = sum(frame.samples for frame in container.decode(stream))
        context = stream.codec_context
        return (
            container.format.name,
            context.name,
            context.sample_rate,
            context.layout.nb_channels,
            frames / context.sample_rate,
            container.bit_rate or 0,
        )


def _noisy(pcm: Pcm, snr_db: float, seed: int = 7) -> Pcm:
    rng = np.random.default_rng(seed)
    clean = pcm.samples.astype(np.float64)
    noise = np.cumsum(rng.standard_normal(clean.size)) * 0.02 + rng.standard_normal(clean.size)  # brown + white
    noise -= noise.mean()
    noise *= np.sqrt(np.mean(clean**2) / np.mean(noise**2) / 10 ** (snr_db / 10))
    return Pcm((clean + noise).astype(np.float32), pcm.sample_rate)


def _snr(clean: np.ndarray, estimate: np.ndarray) -> float:
    n = min(len(clean), len(estimate))
    clean, estimate = clean[:n].astype(np.float64), estimate[:n].astype(np.float64)
    scale = (estimate @ clean) / (clean @ clean)
    residual = estimate - scale * clean
    return float(10 * np.log10(np.sum((scale * clean) ** 2) / np.sum(residual**2)))


# ------------------------------------------------------------------------------------ enhance


async def test_enhance_denoises_keeps_the_words_and_answers_in_the_input_format(http, human_speech, whisper) -> None:
    speech = human_speech.pcm
    noisy = _noisy(speech, 5.0)
    response = await _post(http, "/v1/audio/enhance/", _file(noisy, "mp3"), "noisy.mp3")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "audio/mpeg"
    assert response.headers["x-model"] == "deepfilternet3"
    container, _, rate, _, seconds, _ = _stream_info(response.content)
    assert container == "mp3" and rate == speech.sample_rate
    assert seconds == pytest.approx(speech.duration_seconds, abs=0.1)
    enhanced, _ = decode(response.content)
    clean = speech.samples
    # The mp3 round trip costs the noisy input a little too: compare both after it.
    noisy_heard, _ = decode(_file(noisy, "mp3"))
    lag = _lag(clean, enhanced)
    assert abs(lag) <= 50  # mp3 encoder delay only: the denoiser's own delay is taken out
    assert _snr(clean, _shift(enhanced, lag)) > _snr(clean, _shift(noisy_heard, _lag(clean, noisy_heard))) + 4
    assert word_error_rate(human_speech.text, transcribe(whisper, response.content)) <= 0.15


def _lag(reference: np.ndarray, signal: np.ndarray) -> int:
    n = min(len(reference), len(signal))
    spectrum = np.fft.rfft(signal[:n], 2 * n) * np.conj(np.fft.rfft(reference[:n], 2 * n))
    correlation = np.fft.irfft(spectrum)
    lag = int(np.argmax(correlation))
    return lag - 2 * n if lag > n else lag


def _shift(signal: np.ndarray, lag: int) -> np.ndarray:
    return signal[lag:] if lag >= 0 else np.concatenate([np.zeros(-lag, np.float32), signal])


async def test_enhance_parameters_are_checked_against_the_documented_values(http, speech) -> None:
    data = _file(speech, "wav")
    for fields, param in (
        ({"strength": 4}, "strength"),
        ({"strength": "strong"}, "strength"),
        ({"denoise": "maybe"}, "denoise"),
        ({"format": "opus"}, "format"),
        ({"super_resolution": "true"}, "super_resolution"),
    ):
        response = await _post(http, "/v1/audio/enhance/", data, **fields)
        assert response.status_code == 400, (fields, response.text)
        assert response.json()["error"]["code"] == "bad_request"
        assert response.json()["error"]["param"] == param
    response = await _post(http, "/v1/audio/enhance/", data, denoise="false", enhance_clarity="false")
    assert response.status_code == 400
    response = await _post(http, "/v1/audio/enhance/", data, model="voicefixer")
    assert response.status_code == 404 and response.json()["error"]["code"] == "not_found"


async def test_enhance_with_rnnoise_and_clarity_only_as_flac(http, speech) -> None:
    data = _file(_noisy(speech, 10.0), "wav")
    rnnoise = await _post(http, "/v1/audio/enhance/", data, model="rnnoise", strength=3, format="flac")
    assert rnnoise.status_code == 200, rnnoise.text
    assert rnnoise.headers["content-type"] == "audio/flac" and rnnoise.headers["x-model"] == "rnnoise"
    clarity = await _post(http, "/v1/audio/enhance/", data, denoise="false")
    assert clarity.status_code == 200, clarity.text
    assert clarity.headers["content-type"] == "audio/wav"
    import pyloudnorm

    samples, rate = decode(clarity.content)
    assert pyloudnorm.Meter(rate).integrated_loudness(samples.astype(np.float64)) == pytest.approx(-16, abs=1.0)


# ------------------------------------------------------------------------------------ dereverb


async def test_dereverb_answers_the_same_length_in_the_input_format(http, speech) -> None:
    rng = np.random.default_rng(3)
    rate = speech.sample_rate
    t = np.arange(int(0.6 * rate)) / rate
    rir = rng.standard_normal(t.size) * np.exp(-6.9 * t / 0.6) * 0.3
    rir[0] = 1.0
    wet = np.convolve(speech.samples, rir)[: speech.frames].astype(np.float32)
    wet /= np.abs(wet).max() * 1.1
    response = await _post(http, "/v1/audio/dereverb/", _file(Pcm(wet, rate), "flac"), "room.flac", intensity=5)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "audio/flac" and response.headers["x-model"] == "wpe"
    _, _, out_rate, _, seconds, _ = _stream_info(response.content)
    assert out_rate == rate and seconds == pytest.approx(speech.duration_seconds, abs=0.02)
    for fields, param in (({"type": "hall"}, "type"), ({"intensity": 0}, "intensity"), ({"intensity": 6}, "intensity")):
        bad = await _post(http, "/v1/audio/dereverb/", _file(speech, "wav"), **fields)
        assert bad.status_code == 400 and bad.json()["error"]["param"] == param, bad.text


# ------------------------------------------------------------------------------------ separate


async def test_separate_answers_a_zip_of_stems_that_add_up_to_the_mix(http, speech) -> None:
    rate = 44_100
    vocals = resample(speech, rate).samples
    t = np.arange(vocals.size) / rate
    beat = (np.sin(2 * np.pi * 110 * t) * (np.mod(t, 0.5) < 0.25) * 0.2).astype(np.float32)
    mix = np.stack([vocals * 0.6 + beat, vocals * 0.6 + beat * 0.5], axis=1)
    data = _file(Pcm(mix, rate), "wav", channels=2)
    response = await _post(http, "/v1/audio/separate/", data, stems=4, format="flac")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/zip"
    assert response.headers["content-disposition"] == 'attachment; filename="stems.zip"'
    with zipfile.ZipFile(io.BytesIO(response.content)) as archive:
        names = archive.namelist()
        assert sorted(names) == ["bass.flac", "drums.flac", "other.flac", "vocals.flac"]
        stems = [av_decode_stereo(archive.read(name)) for name in names]
    total = np.sum(stems, axis=0)
    assert total.shape == mix.shape
    assert np.sqrt(np.mean((total - mix) ** 2)) < 0.01 * np.sqrt(np.mean(mix**2)) + 1e-3
    two = await _post(http, "/v1/audio/separate/", data)
    with zipfile.ZipFile(io.BytesIO(two.content)) as archive:
        assert sorted(archive.namelist()) == ["accompaniment.wav", "vocals.wav"]


def av_decode_stereo(data: bytes) -> np.ndarray:
    from speechmesh.common.audio.decode import decode_audio

    return decode_audio(data, mono=False).samples


async def test_separate_refuses_what_the_model_cannot_make(http, speech) -> None:
    data = _file(speech, "wav")
    five = await _post(http, "/v1/audio/separate/", data, stems=5)
    assert five.status_code == 400 and five.json()["error"]["param"] == "stems"
    assert "2, 4" in five.json()["error"]["message"]
    three = await _post(http, "/v1/audio/separate/", data, stems=3)
    assert three.status_code == 400 and "2, 4, 5, 6" in three.json()["error"]["message"]
    for model in ("spleeter", "demucs"):
        missing = await _post(http, "/v1/audio/separate/", data, model=model)
        assert missing.status_code == 404, missing.text
        assert "not available" in missing.json()["error"]["message"]


# ------------------------------------------------------------------------------------ analyze


def _song(tonic_hz: float, bpm: float, seconds: float = 12.0, rate: int = 22_050) -> np.ndarray:
    """A I-IV-V-I progression in the major key of `tonic_hz` with a kick on each beat."""
    t = np.arange(int(seconds * rate)) / rate
    beat = 60 / bpm
    chords = [(0, 4, 7), (5, 9, 12), (7, 11, 14), (0, 4, 7)]
    out = np.zeros_like(t)
    for bar in range(int(seconds / (4 * beat)) + 1):
        chord = chords[bar % 4]
        span = (t >= bar * 4 * beat) & (t < (bar + 1) * 4 * beat)
        for step in chord:
            f = tonic_hz * 2 ** (step / 12)
            out[span] += sum(np.sin(2 * np.pi * f * k * t[span]) / k for k in (1, 2, 3)) * 0.08
    phase = np.mod(t, beat)
    out += np.sin(2 * np.pi * 60 * t) * np.exp(-phase * 30) * 0.6
    return (out / np.abs(out).max() * 0.8).astype(np.float32)


async def test_analyze_answers_the_pages_json(http) -> None:
    data = _file(Pcm(_song(261.63, 120), 22_050), "mp3")
    response = await _post(http, "/v1/audio/analyze/", data, "song.mp3")
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"key", "scale", "bpm", "time_signature", "camelot", "compatible_keys"}
    assert (body["key"], body["scale"], body["camelot"]) == ("C", "Major", "8B")
    assert body["bpm"] == pytest.approx(120, rel=0.02)
    assert body["time_signature"] == "4/4"
    assert body["compatible_keys"] == ["C Major", "G Major", "F Major", "A Minor"]
    assert "x-credits-used" not in response.headers  # free
    noise = np.random.default_rng(1).standard_normal(22_050 * 5).astype(np.float32) * 0.1
    for pcm in (Pcm(noise, 22_050), Pcm(np.zeros(22_050 * 5, np.float32), 22_050)):
        refused = await _post(http, "/v1/audio/analyze/", _file(pcm, "wav"))
        assert refused.status_code == 400, refused.text


# ------------------------------------------------------------------------------------ convert


@pytest.mark.parametrize(
    ("fmt", "codec", "container"),
    [
        ("mp3", "mp3float", "mp3"),
        ("wav", "pcm_s16le", "wav"),
        ("flac", "flac", "flac"),
        ("ogg", "vorbis", "ogg"),
        ("m4a", "aac", "mov,mp4,m4a,3gp,3g2,mj2"),
        ("aac", "aac", "aac"),
    ],
)
async def test_convert_makes_the_asked_codec_rate_channels_and_length(http, speech, fmt, codec, container) -> None:
    source = _file(speech, "flac")
    response = await _post(
        http, "/v1/audio/convert/", source, "speech.flac", format=fmt, sample_rate=48000, channels="stereo", bitrate=192
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == FORMATS[fmt].mime_type
    name, codec_name, rate, channels, seconds, bit_rate = _stream_info(response.content)
    assert (name, codec_name, rate, channels) == (container, codec, 48000, 2)
    assert seconds == pytest.approx(speech.duration_seconds, abs=0.06)
    if fmt in ("mp3", "m4a", "aac"):
        assert bit_rate == pytest.approx(192_000, rel=0.15)


async def test_convert_keeps_lossless_audio_bit_exact_and_the_tags(http, speech) -> None:
    buffer = io.BytesIO()
    encoder = StreamEncoder(FORMATS["wav"], speech.sample_rate, streaming=False, file=buffer, tags={"title": "Call"})
    encoder.feed(speech)
    encoder.finish()
    source = buffer.getvalue()
    flac = await _post(http, "/v1/audio/convert/", source, "speech.wav", format="flac")
    back = await _post(http, "/v1/audio/convert/", flac.content, "speech.flac", format="wav")
    assert back.status_code == 200, back.text
    original = np.frombuffer(source[-speech.frames * 2 :], "<i2")
    assert np.array_equal(np.frombuffer(back.content[-speech.frames * 2 :], "<i2"), original)
    mp3 = await _post(http, "/v1/audio/convert/", flac.content, "speech.flac", format="mp3", channels="mono")
    with av.open(io.BytesIO(mp3.content)) as container:
        assert container.metadata.get("title") == "Call"
        assert container.streams.audio[0].codec_context.layout.nb_channels == 1


async def test_hi_res_input_comes_back_at_48_khz_in_any_format(http, speech) -> None:
    hi_res = _file(Pcm(resample(speech, 96_000).samples, 96_000), "flac")
    for path, fields in (("/v1/audio/convert/", {"format": "mp3"}), ("/v1/audio/dereverb/", {"format": "mp3"})):
        response = await _post(http, path, hi_res, "hi-res.flac", **fields)
        assert response.status_code == 200, (path, response.text)
        _, _, rate, _, seconds, _ = _stream_info(response.content)
        assert rate == 48_000 and seconds == pytest.approx(speech.duration_seconds, abs=0.06)


async def test_convert_refuses_values_the_page_does_not_list(http, speech) -> None:
    data = _file(speech, "wav")
    for fields, param in (
        ({}, "format"),
        ({"format": "wma"}, "format"),
        ({"format": "mp3", "bitrate": 100}, "bitrate"),
        ({"format": "mp3", "sample_rate": 16000}, "sample_rate"),
        ({"format": "mp3", "channels": "surround"}, "channels"),
        ({"format": "ogg", "channels": "mono"}, "channels"),
    ):
        response = await _post(http, "/v1/audio/convert/", data, **fields)
        assert response.status_code == 400, (fields, response.text)
        assert response.json()["error"]["param"] == param


# ------------------------------------------------------------------------------------ hostile uploads


@pytest.mark.parametrize("path", ["/v1/audio/enhance/", "/v1/audio/analyze/", "/v1/voice-convert/"])
async def test_bad_uploads_get_the_documented_errors(http, speech, path) -> None:
    wav = _file(speech, "wav")
    fields = {"target_voice": "festival-us-slt"} if "voice" in path else {}
    cases = [
        (b"", 400),
        (b"this is not audio at all" * 100, 400),
        (wav[: len(wav) // 2], 400),  # truncated: its header says more
    ]
    for data, status in cases:
        response = await _post(http, path, data, **fields)
        assert response.status_code == status, (path, data[:20], response.text)
        assert response.json()["error"]["code"] == "bad_request"
    text_field = await http.post(path, data={"file": "not a file", **fields})
    assert text_field.status_code == 400 and text_field.json()["error"]["param"] == "file"


async def test_an_upload_over_the_limit_is_refused_while_it_uploads(http) -> None:
    async def body() -> AsyncIterator[bytes]:
        yield b'--b\r\nContent-Disposition: form-data; name="file"; filename="a.wav"\r\n\r\n'
        for _ in range(52):
            yield b"\0" * (1024 * 1024)
        yield b"\r\n--b--\r\n"

    response = await http.post(
        "/v1/voice-convert/", content=body(), headers={"Content-Type": "multipart/form-data; boundary=b"}
    )
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "file_too_large"


# ------------------------------------------------------------------------------------ voice changer


async def test_voice_convert_moves_speech_toward_the_target_voice(http, speech, human_speech, whisper) -> None:
    response = await _post(
        http,
        "/v1/voice-convert/",
        _file(human_speech.pcm, "mp3"),
        "me.mp3",
        target_voice="festival-us-slt",
        format="wav",
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "audio/wav"
    assert response.headers["x-model"] == "world-convert"
    before, after = float(response.headers["x-source-similarity"]), float(response.headers["x-speaker-similarity"])
    assert after > before + 0.05, (before, after)
    assert word_error_rate(human_speech.text, transcribe(whisper, response.content)) <= 0.25
    unknown = await _post(http, "/v1/voice-convert/", _file(human_speech.pcm, "wav"), target_voice="no-such-voice")
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "not_found"
    for model in ("openvoice", "knn-vc"):
        missing = await _post(http, "/v1/voice-convert/", _file(speech, "wav"), target_voice="joe", model=model)
        assert missing.status_code == 404 and "not available" in missing.json()["error"]["message"]


async def test_speech_to_speech_changes_pace_not_pitch_and_keeps_the_words(http, speech, human_speech, whisper) -> None:
    person = human_speech.pcm
    response = await _post(http, "/v1/speech-to-speech/", _file(person, "wav"), speed=1.5, emotion="neutral")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "audio/wav"
    samples, rate = decode(response.content)
    assert len(samples) / rate == pytest.approx(person.duration_seconds / 1.5, rel=0.03)
    assert _pitch(samples, rate) == pytest.approx(_pitch(person.samples, person.sample_rate), rel=0.05)
    assert word_error_rate(human_speech.text, transcribe(whisper, response.content)) <= 0.25
    happy = await _post(http, "/v1/speech-to-speech/", _file(person, "mp3"), "me.mp3", emotion="happy")
    assert happy.status_code == 200 and happy.headers["content-type"] == "audio/mpeg"
    samples, rate = decode(happy.content)
    assert _pitch(samples, rate) > _pitch(person.samples, person.sample_rate) * 1.08  # +2.5 semitones set
    assert word_error_rate(human_speech.text, transcribe(whisper, happy.content)) <= 0.25
    for fields, param in (({"speed": 2.5}, "speed"), ({"emotion": "bored"}, "emotion")):
        bad = await _post(http, "/v1/speech-to-speech/", _file(speech, "wav"), **fields)
        assert bad.status_code == 400 and bad.json()["error"]["param"] == param


def _pitch(samples: np.ndarray, rate: int) -> float:
    import pyworld

    x = resample(Pcm(samples, rate), 16_000).samples.astype(np.float64)
    f0, _ = pyworld.harvest(x, 16_000, f0_floor=60, f0_ceil=400)
    voiced = f0[f0 > 0]
    return float(np.median(voiced))


# ------------------------------------------------------------------------------------ credits


async def test_billed_by_decoded_minutes_and_separation_by_stem_count(gateway: Gateway, speech) -> None:
    key = await gateway.key("pro", credits=100)
    data = _file(speech, "wav")
    async with gateway.client(key) as client:
        enhanced = await _post(client, "/v1/audio/enhance/", data)
        assert enhanced.headers["x-credits-used"] == "2"
        two = await _post(client, "/v1/audio/separate/", data)
        assert two.headers["x-credits-used"] == "3"
        four = await _post(client, "/v1/audio/separate/", data, stems=4)
        assert four.headers["x-credits-used"] == "4"
        converted = await _post(client, "/v1/audio/convert/", data, format="mp3")
        assert converted.status_code == 200 and "x-credits-used" not in converted.headers


async def test_the_catalog_lists_the_audio_models_with_their_state(http) -> None:
    models = {model["id"]: model for model in (await http.get("/v1/models/")).json()["models"]}
    assert models["deepfilternet3"]["type"] == "audio" and models["deepfilternet3"]["status"] == "ready"
    assert models["repet-hpss"]["status"] == "ready"
    assert models["world-convert"]["type"] == "voice_conversion"
    for missing in ("spleeter", "openvoice", "knn-vc", "chatterbox"):
        assert models[missing]["status"] == "unavailable" and models[missing]["unavailable_reason"], missing


async def test_a_separation_with_a_webhook_is_a_task_whose_result_is_the_zip(
    tts_port: int, stt_port: int, audio_port: int, speech, tmp_path
) -> None:
    import asyncio
    import json

    from tests.conftest import running_gateway
    from tests.test_platform import Receiver, _worker

    receiver = Receiver()
    server = await asyncio.start_server(receiver.handle, "127.0.0.1", 0)
    hook = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/hook"
    audio = f"127.0.0.1:{audio_port}"
    async with running_gateway(
        f"127.0.0.1:{tts_port}",
        tmp_path / "tasks.db",
        f"127.0.0.1:{stt_port}",
        audio_address=audio,
        webhook_allow_private=True,
    ) as gateway:
        worker = await _worker(gateway, tts_port, stt_port, SPEECHMESH_GATEWAY_AUDIO_ADDRESS=audio)
        try:
            async with gateway.client(await gateway.key("internal", credits=10)) as http:
                accepted = await _post(http, "/v1/audio/separate/", _file(speech, "wav"), webhook_url=hook, stems=4)
                assert accepted.status_code == 202, accepted.text
                assert accepted.headers["x-credits-used"] == "4"
                async with asyncio.timeout(60):
                    _, body = await receiver.received.get()
                payload = json.loads(body)
                assert payload["status"] == "success" and payload["credits_used"] == 4, payload
                result = await http.get(f"/v1/results/{payload['task_id']}")
                assert result.headers["content-type"] == "application/zip"
                with zipfile.ZipFile(io.BytesIO(result.content)) as archive:
                    assert sorted(archive.namelist()) == ["bass.wav", "drums.wav", "other.wav", "vocals.wav"]
        finally:
            worker.kill()
            await worker.wait()
            server.close()
