// The playground's entry point: the key, the tabs, the account bar and every panel.

import { rememberKey, restoreKey } from "./api.js";
import { Catalog } from "./catalog.js";
import { installChat } from "./chat.js";
import { installClone } from "./clone.js";
import { installSpeak } from "./speak.js";
import { installTools } from "./tools.js";
import { installTranscribe } from "./transcribe.js";
import { installAccountBar, installTabs } from "./ui.js";

const catalog = new Catalog();
installTabs();
installAccountBar();
installSpeak(catalog);
installTranscribe(catalog);
installClone(catalog);
installTools();
installChat();
restoreKey();

const key = document.getElementById("api-key");
key.addEventListener("change", () => {
  rememberKey();
  catalog.load();
});
document.getElementById("remember-key").addEventListener("change", rememberKey);
document.getElementById("key-form").addEventListener("submit", (event) => {
  event.preventDefault();
  key.dispatchEvent(new Event("change"));
});
catalog.load();
