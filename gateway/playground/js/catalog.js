// The model list, read once per key: the pickers of every panel are filled from it.

import { apiKey, call } from "./api.js";
import { showError } from "./ui.js";

export class Catalog {
  constructor() {
    this.listeners = [];
    this.models = [];
  }

  onModels(listener) {
    this.listeners.push(listener);
  }

  /** Reads /v1/models/ with the current key (an error, a bad key say, is shown as the API words it). */
  async load() {
    if (!apiKey()) return;
    try {
      const response = await call("/v1/models/");
      this.models = (await response.json()).models;
    } catch (error) {
      showError(error);
      return;
    }
    for (const listener of this.listeners) listener(this.models);
  }
}
