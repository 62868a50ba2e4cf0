// Voice chat: a turn from text or a recording (POST /v1/voice-chat/, the reply's text and
// speech), or a live conversation over the WebSocket; one conversation id carries the history.

import { ApiError, apiKey, call, formOf } from "./api.js";
import { LiveChat } from "./live.js";
import { RecordButton } from "./recorder.js";
import { busy, el, play, showError } from "./ui.js";

const $ = (id) => document.getElementById(id);
let conversation = "";
let live = null;

export function installChat() {
  const recorder = new RecordButton($("chat-record"), $("chat-recorded"));
  $("chat-form").addEventListener("submit", (event) => {
    event.preventDefault();
    busy(event.submitter || $("chat-form").querySelector("button[type=submit]"), () => turn(recorder));
  });
  $("chat-new").addEventListener("click", () => {
    conversation = "";
    $("chat-log").replaceChildren();
  });
  $("chat-live").addEventListener("click", () => (live ? live.stop() : talk()));
}

function say(who, text, ...more) {
  const item = el("li", {}, el("span", { class: "who" }, `${who}:`), el("span", { class: "said" }, text), ...more);
  $("chat-log").append(item);
  return item;
}

async function turn(recorder) {
  const recording = recorder.audio();
  const text = $("chat-text").value.trim();
  const fields = { voice: $("chat-voice").value.trim(), conversation_id: conversation };
  const response = recording
    ? await call("/v1/voice-chat/", { method: "POST", form: formOf({ ...fields, audio: recording }) })
    : await call("/v1/voice-chat/", { method: "POST", json: { ...fields, text, voice: fields.voice || undefined, conversation_id: conversation || undefined } });
  const answer = await response.json();
  conversation = answer.conversation_id;
  recorder.recording = null;
  $("chat-recorded").textContent = "";
  say("You", answer.user_text);
  const audio = el("audio", { controls: "" });
  say("Assistant", answer.ai_text, audio);
  // The reply's audio is kept for this key: fetched with it, then played.
  const speech = await call(new URL(answer.audio_url, location.href).pathname);
  play(audio, await speech.blob());
}

async function talk() {
  const button = $("chat-live");
  let hearing = null;
  let replying = null;
  live = new LiveChat(
    apiKey(),
    { voice: $("chat-voice").value.trim(), conversationId: conversation },
    (event) => {
      if (event.type === "transcript") {
        hearing = hearing || say("You", "");
        hearing.querySelector(".said").textContent = event.text;
        if (event.final) hearing = null;
      } else if (event.type === "reply.text") {
        replying = replying || say("Assistant", "");
        replying.querySelector(".said").textContent += event.delta;
      } else if (event.type === "reply.done") {
        conversation = event.conversation_id || conversation;
        replying = null;
      } else if (event.type === "interrupted") {
        replying?.append(el("span", { class: "muted" }, " (interrupted)"));
        replying = null;
      } else if (event.type === "error") {
        const { code, message, ...fields } = event.error;
        showError(new ApiError(0, code, message, fields));
      }
    },
    (error) => {
      live = null;
      button.setAttribute("aria-pressed", "false");
      button.textContent = "Talk live";
      if (error) showError(error);
    },
  );
  button.setAttribute("aria-pressed", "true");
  button.textContent = "Stop talking";
  try {
    await live.open();
  } catch (error) {
    live?.finish(error);
  }
}
