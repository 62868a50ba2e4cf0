// Speech to text from an upload or the microphone: the transcript by segment, with speakers
// when diarized, and each word's time (a word plays the audio from where it was said).

import { call, formOf } from "./api.js";
import { RecordButton } from "./recorder.js";
import { busy, el, fillModels, play } from "./ui.js";

const $ = (id) => document.getElementById(id);

export function installTranscribe(catalog) {
  const recorder = new RecordButton($("transcribe-record"), $("transcribe-recorded"), $("transcribe-file"));
  $("transcribe-form").addEventListener("submit", (event) => {
    event.preventDefault();
    busy(event.submitter || $("transcribe-form").querySelector("button[type=submit]"), () => transcribe(recorder));
  });
  catalog.onModels((models) => {
    const stt = models.filter((model) => model.type === "stt");
    if (stt.length) fillModels($("transcribe-model"), stt);
  });
}

async function transcribe(recorder) {
  const audio = recorder.audio();
  if (!audio) throw new Error("Choose a file or record something first.");
  const response = await call("/v1/stt/", {
    method: "POST",
    form: formOf({
      file: audio,
      model: $("transcribe-model").value,
      language: $("transcribe-language").value.trim(),
      timestamps: $("transcribe-timestamps").checked,
      diarize: $("transcribe-diarize").checked,
    }),
  });
  render(await response.json(), audio[0]);
}

function render(result, blob) {
  const input = el("audio", { controls: "", "aria-label": "The audio transcribed" });
  play(input, blob, false);
  const words = result.words || [];
  const items = result.segments.map((segment) => {
    const inside = words.filter((word) => word.start >= segment.start - 0.01 && word.end <= segment.end + 0.01);
    const text = inside.length
      ? inside.flatMap((word) => [wordButton(word, input), " "])
      : [segment.text];
    return el(
      "li",
      {},
      segment.speaker ? el("span", { class: "speaker" }, segment.speaker) : "",
      el("span", { class: "muted" }, `[${segment.start.toFixed(2)}–${segment.end.toFixed(2)} s] `),
      ...text,
    );
  });
  $("transcribe-result").replaceChildren(
    el("p", { id: "transcribe-text" }, result.text),
    el("p", { class: "muted" }, `language ${result.language} · ${result.duration.toFixed(2)} s · ${words.length} words timed`),
    input,
    el("ol", { class: "transcript" }, ...items),
  );
}

function wordButton(word, audio) {
  const label = `${word.word.trim()} (${word.start.toFixed(2)}–${word.end.toFixed(2)} s${word.speaker ? ", " + word.speaker : ""})`;
  const button = el("button", { type: "button", class: "word", title: label, "aria-label": label }, word.word.trim());
  button.addEventListener("click", () => {
    audio.currentTime = word.start;
    audio.play().catch(() => {});
  });
  return button;
}
