// The audio tools on an upload: analyze (a table), convert, enhance and dereverb (a player),
// separate (a player per stem, read from the ZIP it answers).

import { call, formOf } from "./api.js";
import { busy, el, player } from "./ui.js";
import { unzip } from "./zip.js";

const $ = (id) => document.getElementById(id);
const MIME = { mp3: "audio/mpeg", wav: "audio/wav", flac: "audio/flac", ogg: "audio/ogg" };

export function installTools() {
  const show = () => {
    for (const row of document.querySelectorAll("#tools-form [data-tool]")) {
      row.hidden = row.dataset.tool !== $("tools-tool").value;
    }
  };
  $("tools-tool").addEventListener("change", show);
  show();
  $("tools-form").addEventListener("submit", (event) => {
    event.preventDefault();
    busy(event.submitter || $("tools-form").querySelector("button[type=submit]"), run);
  });
}

/** The options of the chosen tool, by their API names. */
function options(tool) {
  const fields = {};
  const row = document.querySelector(`#tools-form [data-tool="${tool}"]`);
  for (const input of row ? row.querySelectorAll("[name]") : []) {
    fields[input.name] = input.type === "checkbox" ? input.checked : input.value;
  }
  return fields;
}

async function run() {
  const file = $("tools-file").files[0];
  if (!file) throw new Error("Choose an audio file first.");
  const tool = $("tools-tool").value;
  const response = await call(`/v1/audio/${tool}/`, {
    method: "POST",
    form: formOf({ file: [file, file.name], ...options(tool) }),
  });
  const result = $("tools-result");
  if (tool === "analyze") {
    const analysis = await response.json();
    result.replaceChildren(
      el(
        "table",
        {},
        ...Object.entries(analysis).map(([name, value]) =>
          el("tr", {}, el("th", { scope: "row" }, name), el("td", {}, Array.isArray(value) ? value.join(", ") : String(value))),
        ),
      ),
    );
  } else if (tool === "separate") {
    const stems = await unzip(await response.arrayBuffer());
    result.replaceChildren(
      el(
        "ul",
        { class: "stems" },
        ...stems.map(({ name, data }) => {
          const format = name.split(".").pop();
          return el("li", {}, el("strong", {}, name), player(new Blob([data], { type: MIME[format] || "audio/wav" }), name));
        }),
      ),
    );
  } else {
    const type = response.headers.get("Content-Type");
    const extension = Object.entries(MIME).find(([, mime]) => mime === type)?.[0] || "audio";
    result.replaceChildren(player(new Blob([await response.arrayBuffer()], { type }), `${tool}.${extension}`));
  }
}
