"""The playground at `/`, in a real browser: Debian's Chromium driven by Playwright, against the
real gateway and services. Its microphone is Chromium's fake capture device playing a real
recording of a man reading, so recording goes through MediaRecorder as a user's would.

Screenshots of each state land in `var/playground/` (the README shows one of them)."""

from __future__ import annotations

import asyncio
import base64
import re
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import numpy as np
import pytest
import pytest_asyncio

from speechmesh.common.audio.pcm import Pcm
from tests.conftest import LIBRIVOX, Gateway, decode, librivox, transcribe, word_error_rate, words
from tests.test_gateway_audio import _file, _song

pytestmark = pytest.mark.slow

CHROMIUM = Path("/usr/bin/chromium")
SHOTS = Path(__file__).resolve().parents[1] / "var" / "playground"
READING = LIBRIVOX / "sense_and_sensibility_01_austen_64kb-0870.wav"
TEXT = "Hello from speechmesh! The playground speaks while the audio streams."


@pytest_asyncio.fixture(scope="module")
async def browser() -> AsyncIterator[object]:
    if not CHROMIUM.exists():
        pytest.fail("Debian's chromium is missing: `make test` installs it (TEST_APT_PACKAGES)")
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=str(CHROMIUM),
            args=[
                "--no-sandbox",  # CI runs as root
                "--autoplay-policy=no-user-gesture-required",
                "--use-fake-ui-for-media-stream",
                "--use-fake-device-for-media-stream",
                f"--use-file-for-fake-audio-capture={READING}",
            ],
        )
        try:
            yield browser
        finally:
            await browser.close()


@pytest_asyncio.fixture
async def page(browser, gateway: Gateway) -> AsyncIterator[object]:
    context = await browser.new_context(base_url=gateway.base_url, viewport={"width": 1100, "height": 900})
    page = await context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("console", lambda message: print(f"console {message.type}: {message.text}"))  # shown on a failure
    # Nothing may come from elsewhere (no CDN): such a request is refused and fails the test.
    outside: list[str] = []

    async def refuse(route) -> None:
        outside.append(route.request.url)
        await route.abort()

    await context.route(lambda url: not url.startswith(gateway.base_url), refuse)
    await page.goto("/")
    try:
        yield page
    finally:
        await context.close()
    assert not errors, errors  # no script error in any test
    assert not outside, outside


async def keyed(page, gateway: Gateway) -> str:
    """Enters a fresh key (with credits) and waits for the pickers the model list fills."""
    key = await gateway.key("pro", credits=10_000)
    await page.fill("#api-key", key)
    await page.press("#api-key", "Enter")
    await page.wait_for_function("() => document.querySelectorAll('#speak-voice option').length > 0")
    return key


async def shot(page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


async def blob_bytes(page, url_expression: str) -> bytes:
    """The bytes behind a blob: URL of the page (an audio element's source, a download link)."""
    encoded = await page.evaluate(
        """async (url) => {
            const bytes = new Uint8Array(await (await fetch(url)).arrayBuffer());
            let text = "";
            for (const byte of bytes) text += String.fromCharCode(byte);
            return btoa(text);
        }""",
        await page.evaluate(url_expression),
    )
    return base64.b64decode(encoded)


async def test_speech_streams_into_the_audio_element_and_reads_back(page, gateway, whisper) -> None:
    key = await keyed(page, gateway)
    await page.select_option("#speak-model", "piper")
    await page.wait_for_function(
        "() => [...document.querySelectorAll('#speak-voice option')].some(o => o.value === 'en_US-joe-medium')"
    )
    await page.select_option("#speak-voice", "en_US-joe-medium")
    await page.fill("#speak-text", TEXT)
    assert await page.is_checked("#speak-stream")
    await page.click("#speak-form button[type=submit]")
    await page.wait_for_selector("#speak-download:not([hidden])", timeout=60_000)
    # Played through Media Source Extensions while it arrived: the element's duration is the audio's.
    played = await page.evaluate("document.getElementById('speak-audio').duration")
    streamed = await blob_bytes(page, "document.getElementById('speak-download').href")
    samples, rate = decode(streamed)
    assert abs(len(samples) / rate - played) < 0.15, (len(samples) / rate, played)
    # The same request made directly: the page got the whole of it.
    async with gateway.client(key) as http:
        direct = await http.post(
            "/v1/tts/", json={"text": TEXT, "model": "piper", "voice": "en_US-joe-medium", "format": "mp3"}
        )
        balance = direct.headers["X-Credits-Remaining"]
    expected, expected_rate = decode(direct.content)
    assert abs(len(samples) / rate - len(expected) / expected_rate) < 0.1
    assert word_error_rate(TEXT, transcribe(whisper, streamed)) <= 0.2
    # The account bar shows what the last response's headers said (one more request: one credit).
    assert int(await page.inner_text("#credits-remaining")) == int(balance) + 1
    assert "of 60" in await page.inner_text("#rate-remaining")
    await shot(page, "speak")


async def test_word_timestamps_are_highlighted_as_the_audio_plays(page, gateway) -> None:
    await keyed(page, gateway)
    await page.select_option("#speak-model", "piper")
    await page.fill("#speak-text", "Seven green apples fell from the tree.")
    await page.check("#speak-timestamps")
    await page.click("#speak-form button[type=submit]")
    await page.wait_for_selector("#speak-words span", timeout=60_000)
    words = await page.eval_on_selector_all("#speak-words span", "spans => spans.map(s => s.textContent)")
    assert [w.strip(".").lower() for w in words] == ["seven", "green", "apples", "fell", "from", "the", "tree"]
    times = await page.eval_on_selector_all(
        "#speak-words span", "spans => spans.map(s => [Number(s.dataset.start), Number(s.dataset.end)])"
    )
    start, end = times[2]
    await page.wait_for_function("() => document.getElementById('speak-audio').readyState >= 1")
    await page.evaluate(
        """(t) => { const a = document.getElementById('speak-audio'); a.pause(); a.currentTime = t;
                    a.dispatchEvent(new Event('timeupdate')); }""",
        (start + end) / 2,
    )
    assert await page.eval_on_selector_all("#speak-words span.now", "spans => spans.map(s => s.textContent)") == [
        words[2]
    ]
    await shot(page, "timestamps")


async def test_an_upload_is_transcribed_with_word_times(page, gateway) -> None:
    await keyed(page, gateway)
    await page.click("#tab-transcribe")
    await page.set_input_files("#transcribe-file", str(READING))
    await page.click("#transcribe-form button[type=submit]")
    await page.wait_for_selector("#transcribe-text", timeout=120_000)
    heard = await page.inner_text("#transcribe-text")
    assert word_error_rate(librivox("0870").text, heard) <= 0.25, heard
    labels = await page.eval_on_selector_all("#transcribe-result .word", "words => words.map(w => w.title)")
    assert len(labels) >= 10 and all("\N{EN DASH}" in label for label in labels)
    await shot(page, "transcribe")


async def test_speakers_are_shown_when_diarized(page, gateway, dialog, tmp_path) -> None:
    await keyed(page, gateway)
    await page.click("#tab-transcribe")
    meeting = tmp_path / "meeting.wav"
    meeting.write_bytes(_file(Pcm(dialog.audio, 16000), "wav"))
    await page.set_input_files("#transcribe-file", str(meeting))
    await page.check("#transcribe-diarize")
    await page.click("#transcribe-form button[type=submit]")
    await page.wait_for_selector("#transcribe-text", timeout=120_000)
    speakers = await page.eval_on_selector_all(".transcript .speaker", "labels => labels.map(l => l.textContent)")
    assert len(set(speakers)) == 3, speakers  # the dialog's three voices
    await shot(page, "diarized")


async def test_a_microphone_recording_is_transcribed(page, gateway) -> None:
    await keyed(page, gateway)
    await page.click("#tab-transcribe")
    await page.click("#transcribe-record")
    await page.wait_for_selector("#transcribe-record[aria-pressed=true]")
    await asyncio.sleep(4.0)  # the fake microphone plays the reading (7.1 s, looped)
    await page.click("#transcribe-record")
    await page.wait_for_function(
        "() => document.getElementById('transcribe-recorded').textContent.startsWith('recorded')"
    )
    await page.click("#transcribe-form button[type=submit]")
    await page.wait_for_selector("#transcribe-text", timeout=120_000)
    heard = set(words(await page.inner_text("#transcribe-text")))
    # Four seconds of the reading: some of its words, whichever part the loop was at.
    assert len(heard & set(words(librivox("0870").text))) >= 3, heard


async def test_a_voice_is_cloned_from_an_upload(page, gateway, reference, tmp_path) -> None:
    await keyed(page, gateway)
    await page.click("#tab-clone")
    voice = tmp_path / "my-voice.wav"
    voice.write_bytes(reference)
    await page.set_input_files("#clone-file", str(voice))
    await page.click("#clone-form button[type=submit]")
    await page.wait_for_function("() => document.getElementById('clone-note').textContent.length > 0", timeout=120_000)
    assert "Similarity to the reference" in await page.inner_text("#clone-note")
    samples, rate = decode(await blob_bytes(page, "document.getElementById('clone-audio').src"))
    assert len(samples) / rate > 1.5


async def test_api_errors_are_shown_as_the_api_words_them(page, gateway) -> None:
    await page.fill("#api-key", "sk-tts-not-a-real-key")
    await page.press("#api-key", "Enter")
    await page.wait_for_selector("#error:not([hidden])")
    async with httpx.AsyncClient(base_url=gateway.base_url) as http:
        refused = (await http.get("/v1/models/", headers={"Authorization": "Bearer sk-tts-not-a-real-key"})).json()
    shown = await page.inner_text("#error")
    assert shown.startswith("unauthorized (401)")
    assert refused["error"]["message"] in shown
    await shot(page, "error")
    await keyed(page, gateway)
    await page.fill("#speak-text", "x" * 5001)  # over the Pro plan's 5,000 characters
    await page.click("#speak-form button[type=submit]")
    await page.wait_for_function("() => document.getElementById('error').textContent.startsWith('bad_request (400)')")
    assert "param: text" in await page.inner_text("#error")


async def test_separated_stems_each_get_a_player_and_a_song_is_analyzed(page, gateway, tmp_path) -> None:
    await keyed(page, gateway)
    await page.click("#tab-tools")
    await page.set_input_files("#tools-file", str(READING))
    await page.select_option("#tools-tool", "separate")
    await page.click("#tools-form button[type=submit]")
    await page.wait_for_selector(".stems li", timeout=120_000)
    names = await page.eval_on_selector_all(".stems li strong", "names => names.map(n => n.textContent)")
    assert len(names) == 2
    for index in range(2):
        stem = await blob_bytes(page, f"document.querySelectorAll('.stems audio')[{index}].src")
        samples, rate = decode(stem)
        assert abs(len(samples) / rate - 7.1) < 0.2
    song = tmp_path / "song.wav"
    song.write_bytes(_file(Pcm(_song(261.63, 120), 22_050), "wav"))  # C major at 120 BPM
    await page.set_input_files("#tools-file", str(song))
    await page.select_option("#tools-tool", "analyze")
    await page.click("#tools-form button[type=submit]")
    await page.wait_for_selector("#tools-result table, #error:not([hidden])")
    assert await page.is_hidden("#error"), await page.inner_text("#error")
    table = dict(
        await page.eval_on_selector_all(
            "#tools-result tr", "rows => rows.map(r => [r.cells[0].textContent, r.cells[1].textContent])"
        )
    )
    assert (table["key"], table["scale"], round(float(table["bpm"]))) == ("C", "Major", 120)


async def test_keyboard_moves_between_tabs_and_a_phone_screen_fits(page, gateway) -> None:
    await page.focus("#tab-speak")
    await page.keyboard.press("ArrowRight")
    assert await page.is_visible("#transcribe") and not await page.is_visible("#speak")
    assert await page.evaluate("document.activeElement.id") == "tab-transcribe"
    await page.keyboard.press("End")
    assert await page.is_visible("#chat")
    await page.set_viewport_size({"width": 375, "height": 740})
    await page.keyboard.press("Home")
    # Nothing wider than the screen: no sideways scrolling on a phone.
    assert await page.evaluate("document.documentElement.scrollWidth") <= 375
    await keyed(page, gateway)
    await shot(page, "phone")


async def test_a_voice_chat_turn_answers_in_text_and_speech(page, gateway) -> None:
    await keyed(page, gateway)
    await page.click("#tab-chat")
    await page.fill("#chat-text", "Say hello in one short sentence.")
    await page.click("#chat-form button[type=submit]")
    await page.wait_for_function(
        "() => document.querySelectorAll('#chat-log li').length === 2"
        " && document.querySelector('#chat-log audio')?.src",
        timeout=120_000,
    )
    reply = await page.inner_text("#chat-log li:nth-child(2) .said")
    assert reply.strip()
    samples, rate = decode(await blob_bytes(page, "document.querySelector('#chat-log audio').src"))
    assert len(samples) / rate > 0.5 and float(np.sqrt(np.mean(samples**2))) > 0.01
    await shot(page, "chat")


async def test_live_voice_chat_hears_the_microphone(page, gateway) -> None:
    await keyed(page, gateway)
    await page.click("#tab-chat")
    # The key goes as a WebSocket subprotocol; the fake microphone reads aloud.
    await page.click("#chat-live")
    await page.wait_for_function(
        "() => [...document.querySelectorAll('#chat-log li .said')].some(s => s.textContent.split(' ').length >= 6)",
        timeout=60_000,
    )
    heard = set(words(await page.inner_text("#chat-log li .said")))
    assert len(heard & set(words(librivox("0870").text))) >= 4, heard
    await page.click("#chat-live")
    await page.wait_for_selector("#chat-live[aria-pressed=false]")
    assert await page.is_hidden("#error"), await page.inner_text("#error")


async def test_the_api_reference_page_renders_every_operation_offline(page, client) -> None:
    await page.goto("/docs")
    await page.wait_for_selector(".opblock", timeout=30_000)
    document = (await client.get("/openapi.json")).json()
    operations = sum(len(methods) for methods in document["paths"].values())
    assert await page.locator(".opblock").count() == operations
    await shot(page, "docs")


async def test_the_page_and_its_files_are_served_with_a_strict_policy(client) -> None:
    page = await client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    policy = page.headers["content-security-policy"]
    assert "default-src 'self'" in policy and "frame-ancestors 'none'" in policy
    for asset in re.findall(r'(?:src|href)="(/playground/[^"]+)"', page.text):
        assert (await client.get(asset)).status_code == 200, asset
    # Nothing else is served from there, and a miss is the documented error, not a bare page.
    for missing in ("/playground/nope.js", "/playground/../pyproject.toml", "/playground/%2e%2e/gateway/app.py"):
        reply = await client.get(missing)
        assert reply.status_code == 404, missing
        assert reply.json()["error"]["code"] == "not_found"


def test_the_readme_shows_a_screenshot_of_the_playground() -> None:
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    assert "docs/playground.png" in readme
    assert (Path(__file__).resolve().parents[1] / "docs" / "playground.png").stat().st_size > 10_000
