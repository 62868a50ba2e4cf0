// A record button beside a file input: press to record from the microphone, press again to
// stop. The last thing given wins: a recording (WebM/Opus in Chromium and Firefox, MP4 in
// Safari: both are accepted uploads) clears the chosen file, a chosen file the recording.

import { showError } from "./ui.js";

export class RecordButton {
  constructor(button, label, fileInput = null) {
    this.button = button;
    this.label = label;
    this.fileInput = fileInput;
    this.recording = null; // { blob, name }
    this.recorder = null;
    button.addEventListener("click", () => (this.recorder ? this.stop() : this.start()));
    fileInput?.addEventListener("change", () => {
      this.recording = null;
      this.label.textContent = "";
    });
  }

  async start() {
    let stream;
    try {
      stream = await navigator.mediaDevices.getUserMedia({ audio: true });
    } catch (error) {
      showError(new Error(`The microphone is not available: ${error.message}`));
      return;
    }
    const chunks = [];
    const started = performance.now();
    this.recorder = new MediaRecorder(stream);
    this.recorder.addEventListener("dataavailable", (event) => chunks.push(event.data));
    this.recorder.addEventListener("stop", () => {
      stream.getTracks().forEach((track) => track.stop());
      const type = this.recorder.mimeType || "audio/webm";
      const blob = new Blob(chunks, { type });
      const extension = type.includes("mp4") ? "mp4" : type.includes("ogg") ? "ogg" : "webm";
      this.recording = { blob, name: `recording.${extension}` };
      if (this.fileInput) this.fileInput.value = "";
      this.recorder = null;
      this.label.textContent = `recorded ${((performance.now() - started) / 1000).toFixed(1)} s`;
      this.button.setAttribute("aria-pressed", "false");
      this.button.textContent = "Record";
      this.button.dispatchEvent(new CustomEvent("recorded"));
    });
    this.recorder.start();
    this.button.setAttribute("aria-pressed", "true");
    this.button.textContent = "Stop";
    this.label.textContent = "recording…";
  }

  stop() {
    this.recorder?.stop();
  }

  /** [blob, filename] of the chosen file or the recording; null when neither. */
  audio() {
    const file = this.fileInput?.files?.[0];
    if (file) return [file, file.name];
    return this.recording ? [this.recording.blob, this.recording.name] : null;
  }
}
