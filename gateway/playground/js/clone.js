// Voice cloning: a reference recording (an upload or the microphone) and a text, spoken in
// that voice; the similarity the service measured is shown beside the player.

import { call, formOf } from "./api.js";
import { RecordButton } from "./recorder.js";
import { busy, el, fillModels, play } from "./ui.js";

const $ = (id) => document.getElementById(id);

export function installClone(catalog) {
  const recorder = new RecordButton($("clone-record"), $("clone-recorded"), $("clone-file"));
  $("clone-form").addEventListener("submit", (event) => {
    event.preventDefault();
    busy(event.submitter || $("clone-form").querySelector("button[type=submit]"), () => clone(recorder));
  });
  catalog.onModels((models) => {
    const cloners = models.filter((model) => model.supports_cloning);
    fillModels($("clone-model"), cloners, el("option", { value: "" }, "default"));
  });
}

async function clone(recorder) {
  const reference = recorder.audio();
  if (!reference) throw new Error("Choose or record a reference voice first.");
  const format = $("clone-format").value;
  const response = await call("/v1/tts/clone/", {
    method: "POST",
    form: formOf({
      reference_audio: reference,
      text: $("clone-text").value,
      model: $("clone-model").value,
      language: $("clone-language").value.trim(),
      format,
    }),
  });
  const similarity = response.headers.get("X-Speaker-Similarity");
  const base = response.headers.get("X-Base-Similarity");
  play($("clone-audio"), new Blob([await response.arrayBuffer()], { type: response.headers.get("Content-Type") }));
  $("clone-note").textContent = similarity
    ? `Similarity to the reference: ${similarity} (its base voice ${response.headers.get("X-Base-Voice")}: ${base}).`
    : "";
}
