// Small shared pieces of the page: the error banner, busy buttons, the account bar, tabs,
// element building and audio players fed from blobs.

import { ApiError, onResponse } from "./api.js";

const banner = () => document.getElementById("error");

/** Shows an error as the API words it: its code, its message and the fields it names. */
export function showError(error) {
  const box = banner();
  box.replaceChildren();
  if (error instanceof ApiError) {
    const fields = Object.entries(error.fields || {})
      .map(([name, value]) => `${name}: ${typeof value === "object" ? JSON.stringify(value) : value}`)
      .join(", ");
    box.append(el("code", {}, error.code), `${error.status ? ` (${error.status})` : ""} ${error.message}`);
    if (fields) box.append(el("span", { class: "muted" }, ` — ${fields}`));
  } else {
    box.append(el("code", {}, "error"), ` ${error.message || error}`);
  }
  box.hidden = false;
}

export function clearError() {
  banner().hidden = true;
  banner().replaceChildren();
}

/** Runs `work` with `button` disabled, showing any error; the form stays usable after. */
export async function busy(button, work) {
  clearError();
  button.disabled = true;
  button.setAttribute("aria-busy", "true");
  try {
    return await work();
  } catch (error) {
    if (error.name !== "AbortError") showError(error);
  } finally {
    button.disabled = false;
    button.removeAttribute("aria-busy");
  }
}

/** `document.createElement` with attributes and children. */
export function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, value);
  node.append(...children);
  return node;
}

/** Fills a model picker: each model with its state, one that cannot run disabled (its reason
 * on hover); `extra` options come first; the choice is kept while the model is listed. */
export function fillModels(select, models, ...extra) {
  const chosen = select.value;
  select.replaceChildren(
    ...extra,
    ...models.map((model) => {
      const node = el("option", { value: model.id }, `${model.name} (${model.status})`);
      node.disabled = model.status === "unavailable";
      if (model.unavailable_reason) node.title = model.unavailable_reason;
      return node;
    }),
  );
  if ([...select.options].some((option) => option.value === chosen)) select.value = chosen;
}

const urls = new WeakMap();
/** Points `audio` at `blob`, freeing the URL it had. */
export function play(audio, blob, autoplay = true) {
  if (urls.has(audio)) URL.revokeObjectURL(urls.get(audio));
  const url = URL.createObjectURL(blob);
  urls.set(audio, url);
  audio.src = url;
  if (autoplay) audio.play().catch(() => {}); // a browser may refuse autoplay: the controls remain
  return url;
}

/** A new player for `blob`, with a link to save it as `name`. */
export function player(blob, name) {
  const audio = el("audio", { controls: "" });
  const url = play(audio, blob, false);
  return el("div", {}, audio, el("a", { href: url, download: name }, `Download ${name}`));
}

export function installAccountBar() {
  const set = (id, value) => {
    if (value !== null) document.getElementById(id).textContent = value;
  };
  onResponse((headers) => {
    set("credits-remaining", headers.get("X-Credits-Remaining"));
    const used = headers.get("X-Credits-Used");
    set("credits-used", used === null ? null : `${used} credit${used === "1" ? "" : "s"}`);
    const remaining = headers.get("X-RateLimit-Remaining");
    const limit = headers.get("X-RateLimit-Limit");
    if (remaining !== null) set("rate-remaining", limit === null ? remaining : `${remaining} of ${limit}`);
    const reset = headers.get("X-RateLimit-Reset");
    if (reset !== null) set("rate-reset", new Date(Number(reset) * 1000).toLocaleTimeString());
  });
}

/** WAI-ARIA tabs: click or arrow keys (Home, End) move between them. */
export function installTabs() {
  const tabs = [...document.querySelectorAll('[role="tab"]')];
  const select = (tab) => {
    for (const other of tabs) {
      const selected = other === tab;
      other.setAttribute("aria-selected", String(selected));
      other.tabIndex = selected ? 0 : -1;
      document.getElementById(other.getAttribute("aria-controls")).hidden = !selected;
    }
    tab.focus();
  };
  for (const tab of tabs) {
    tab.addEventListener("click", () => select(tab));
    tab.addEventListener("keydown", (event) => {
      const at = tabs.indexOf(tab);
      const next = {
        ArrowRight: tabs[(at + 1) % tabs.length],
        ArrowLeft: tabs[(at - 1 + tabs.length) % tabs.length],
        Home: tabs[0],
        End: tabs[tabs.length - 1],
      }[event.key];
      if (next) {
        event.preventDefault();
        select(next);
      }
    });
  }
}
