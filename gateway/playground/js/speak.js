// Text to speech: model, language and voice pickers fed by /v1/models/ and /v1/voices/, the
// voice preview, playback while the stream arrives (Media Source Extensions where the browser
// plays the format that way), and words highlighted from the timestamps option.

import { call } from "./api.js";
import { busy, el, fillModels, play } from "./ui.js";

const $ = (id) => document.getElementById(id);
const MIME = { mp3: "audio/mpeg", wav: "audio/wav", flac: "audio/flac", ogg: "audio/ogg" };
let voices = []; // the selected model's voices
let download = null;

export function installSpeak(catalog) {
  $("speak-model").addEventListener("change", () => loadVoices().catch(() => {}));
  $("speak-language").addEventListener("change", showVoices);
  $("speak-preview").addEventListener("click", preview);
  $("speak-form").addEventListener("submit", (event) => {
    event.preventDefault();
    busy(event.submitter || $("speak-form").querySelector("button[type=submit]"), speak);
  });
  $("speak-audio").addEventListener("timeupdate", highlight);
  catalog.onModels((models) => {
    fillModels(
      $("speak-model"),
      models.filter((model) => model.type === "tts"),
    );
    loadVoices().catch(() => {});
  });
}

function option(value, text) {
  return el("option", { value }, text);
}

async function loadVoices() {
  const model = $("speak-model").value;
  if (!model) return;
  const response = await call(`/v1/voices/?model=${encodeURIComponent(model)}`);
  voices = (await response.json()).voices;
  const languages = [...new Set(voices.map((voice) => voice.language))].sort();
  const select = $("speak-language");
  const chosen = select.value;
  select.replaceChildren(option("", "any"), ...languages.map((language) => option(language, language)));
  select.value = languages.includes(chosen) ? chosen : "";
  showVoices();
}

function showVoices() {
  const language = $("speak-language").value;
  const select = $("speak-voice");
  const shown = voices.filter((voice) => !language || voice.language === language);
  select.replaceChildren(
    ...shown.map((voice) => option(voice.id, `${voice.name} · ${voice.language} · ${voice.gender}`)),
  );
}

function preview() {
  const voice = voices.find((candidate) => candidate.id === $("speak-voice").value);
  if (voice) new Audio(voice.preview_url).play().catch(() => {});
}

function request() {
  return {
    text: $("speak-text").value,
    model: $("speak-model").value || undefined,
    voice: $("speak-voice").value || undefined,
    language: $("speak-language").value ? $("speak-language").value.split("-")[0] : undefined,
    format: $("speak-format").value,
    speed: Number($("speak-speed").value),
  };
}

async function speak() {
  const body = request();
  $("speak-words").replaceChildren();
  if ($("speak-timestamps").checked) return timed(body);
  const response = await call("/v1/tts/", { method: "POST", json: { ...body, stream: $("speak-stream").checked } });
  const mime = MIME[body.format];
  if ($("speak-stream").checked && window.MediaSource && MediaSource.isTypeSupported(mime)) {
    return streamed(response, mime, body.format);
  }
  const blob = new Blob([await response.arrayBuffer()], { type: mime });
  offer(blob, body.format, play($("speak-audio"), blob));
}

/** Plays the stream as it arrives; the whole file is offered for download once it ends. */
async function streamed(response, mime, format) {
  const audio = $("speak-audio");
  const source = new MediaSource();
  const url = URL.createObjectURL(source);
  audio.src = url;
  await new Promise((resolve) => source.addEventListener("sourceopen", resolve, { once: true }));
  const buffer = source.addSourceBuffer(mime);
  const appended = (chunk) =>
    new Promise((resolve, reject) => {
      buffer.addEventListener("updateend", resolve, { once: true });
      buffer.addEventListener("error", reject, { once: true });
      buffer.appendBuffer(chunk);
    });
  const parts = [];
  const reader = response.body.getReader();
  let started = false;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    parts.push(value);
    await appended(value);
    if (!started) {
      started = true;
      audio.play().catch(() => {});
    }
  }
  source.endOfStream();
  const blob = new Blob(parts, { type: mime });
  offer(blob, format, URL.createObjectURL(blob));
}

function offer(blob, format, url) {
  if (download) URL.revokeObjectURL(download);
  download = url;
  const link = $("speak-download");
  link.href = url;
  link.download = `speech.${format}`;
  link.textContent = `Download speech.${format} (${(blob.size / 1024).toFixed(0)} KiB)`;
  link.hidden = false;
}

/** With timestamps: JSON with the audio and each word's start and end, shown as the audio plays. */
async function timed(body) {
  const response = await call("/v1/tts/", { method: "POST", json: { ...body, timestamps: true } });
  const answer = await response.json();
  const bytes = Uint8Array.from(atob(answer.audio_base64), (c) => c.charCodeAt(0));
  const blob = new Blob([bytes], { type: answer.content_type });
  offer(blob, body.format, play($("speak-audio"), blob));
  $("speak-words").replaceChildren(
    ...answer.words.flatMap((word) => [
      el("span", { "data-start": word.start, "data-end": word.end, title: `${word.start}–${word.end} s` }, word.word),
      " ",
    ]),
  );
}

function highlight() {
  const now = $("speak-audio").currentTime;
  for (const span of $("speak-words").querySelectorAll("span")) {
    const on = now >= Number(span.dataset.start) && now < Number(span.dataset.end);
    span.classList.toggle("now", on);
    if (on) span.setAttribute("aria-current", "true");
    else span.removeAttribute("aria-current");
  }
}
