// Publish: the <dialog> with topic, key, value (JSON or text), header rows,
// priority and partition; POST /api/topics/{topic}/records and the answer's
// partition and offset, or the API's error. The page lists what this tab
// sent. Other pages open the dialog with openPublish(topic).

import * as api from "../api.js";
import { byId, el, setOptions, setStatus } from "../dom.js";
import { formatTime } from "../format.js";
import { buildRecord, describeWritten } from "../publish-body.js";

/** Lines kept in the page's list of sent records. */
const HISTORY_MAX = 200;

let dialog = null;

export function setupPublish() {
  dialog ??= new PublishDialog();
  byId("publish-open").addEventListener("click", () => openPublish(""));
  return { show() {}, hide() {} };
}

/** Opens the dialog, with `topic` filled in when given. */
export function openPublish(topic) {
  dialog ??= new PublishDialog();
  dialog.open(topic);
}

class PublishDialog {
  constructor() {
    this.dialog = byId("publish-dialog");
    this.form = byId("publish-form");
    this.topic = byId("publish-topic");
    this.key = byId("publish-key");
    this.value = byId("publish-value");
    this.valueError = byId("publish-value-error");
    this.headers = byId("publish-headers");
    this.priority = byId("publish-priority");
    this.partition = byId("publish-partition");
    this.result = byId("publish-result");
    this.submit = this.form.querySelector('[data-testid="publish-submit"]');
    this.history = byId("publish-history");
    this.opener = null;
    this.rows = 0;
    this.form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.send();
    });
    byId("publish-close").addEventListener("click", () => this.dialog.close());
    byId("publish-header-add").addEventListener("click", () => this.addHeaderRow().querySelector("input").focus());
    this.dialog.addEventListener("close", () => this.opener?.focus());
    this.value.addEventListener("input", () => this.showValueError(""));
  }

  open(topic) {
    this.opener = document.activeElement;
    if (topic) this.topic.value = topic;
    setStatus(this.result, "");
    this.loadTopics();
    if (!this.dialog.open) this.dialog.showModal();
    (this.topic.value ? this.value : this.topic).focus();
  }

  async loadTopics() {
    try {
      const { topics } = await api.get("/api/topics");
      setOptions(byId("publish-topics"), topics.map((t) => t.name).sort());
    } catch {
      // The list only helps typing; a failed send shows the real error.
    }
  }

  addHeaderRow() {
    this.rows += 1;
    const nameId = `publish-header-name-${this.rows}`;
    const valueId = `publish-header-value-${this.rows}`;
    const row = el(
      "li",
      { testid: "publish-header-row" },
      el("div", { class: "field" }, el("label", { for: nameId, text: "Name" }),
        el("input", { id: nameId, testid: "publish-header-name", autocomplete: "off", spellcheck: "false" })),
      el("div", { class: "field" }, el("label", { for: valueId, text: "Value" }),
        el("input", { id: valueId, testid: "publish-header-value", autocomplete: "off", spellcheck: "false" })),
    );
    row.append(
      el("button", {
        type: "button",
        class: "secondary",
        testid: "publish-header-remove",
        "aria-label": "Remove this header",
        text: "Remove",
        on: {
          click: () => {
            row.remove();
            byId("publish-header-add").focus();
          },
        },
      }),
    );
    this.headers.append(row);
    return row;
  }

  fields() {
    const rows = [...this.headers.querySelectorAll("li")].map((row) => [
      row.querySelector('[data-testid="publish-header-name"]').value,
      row.querySelector('[data-testid="publish-header-value"]').value,
    ]);
    return {
      key: this.key.value,
      format: this.form.querySelector('input[name="publish-format"]:checked')?.value ?? "json",
      value: this.value.value,
      headers: rows,
      priority: this.priority.value,
      partition: this.partition.value,
    };
  }

  async send() {
    const topic = this.topic.value.trim();
    if (!topic) {
      setStatus(this.result, "Name a topic.", "error");
      this.topic.focus();
      return;
    }
    const built = buildRecord(this.fields());
    if (built.error) return this.refuse(built.error);
    this.submit.disabled = true;
    setStatus(this.result, "Sending…");
    try {
      const answer = await api.post(api.topicPath(topic, "/records"), built.record);
      const written = answer?.records?.[0] ?? {};
      this.showResult(describeWritten(topic, answer), "ok", written);
    } catch (error) {
      this.showResult(`Not written: ${api.errorText(error)}`, "error", {});
    } finally {
      this.submit.disabled = false;
    }
  }

  refuse({ field, message }) {
    if (field === "value") {
      this.showValueError(message);
      this.value.focus();
    }
    setStatus(this.result, message, "error");
  }

  showValueError(message) {
    this.valueError.textContent = message;
    if (message) this.value.setAttribute("aria-invalid", "true");
    else this.value.removeAttribute("aria-invalid");
  }

  showResult(text, kind, written) {
    setStatus(this.result, text, kind);
    this.result.dataset.partition = written.partition ?? "";
    this.result.dataset.offset = written.offset ?? "";
    const item = el("li", { testid: "publish-history-entry", class: kind === "error" ? "error" : "" }, `${formatTime(Date.now())} ${text}`);
    this.history.prepend(item);
    while (this.history.childElementCount > HISTORY_MAX) this.history.lastElementChild.remove();
  }
}
