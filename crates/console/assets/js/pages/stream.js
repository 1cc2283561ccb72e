// Live stream: subscribe to topics (one TopicStream each, an optional key
// filter), a log of their records, newest first, that can be paused,
// filtered and bounded. Each tab holds its own subscriptions. While the
// page or the tab is hidden the streams are closed and keep their
// position; shown again, they go on from it, so the log has no gap.

import * as api from "../api.js";
import { byId, el, setOptions, setStatus } from "../dom.js";
import { formatCount, searchText } from "../format.js";
import { LogBuffer, clampKeep, matches } from "../log-buffer.js";
import { noticeItem, recordItem } from "../record-item.js";
import { TopicStream } from "../topic-stream.js";
import { openPublish } from "./publish.js";

/**
 * Browsers keep at most 6 HTTP/1.1 connections per server and every live
 * stream holds one: 4 leaves room for the page's other requests.
 */
export const SUBSCRIPTIONS_MAX = 4;

export function setupStream() {
  const page = new StreamPage();
  return { show: () => page.show(), hide: () => page.hide() };
}

class StreamPage {
  constructor() {
    this.topicSelect = byId("stream-topic");
    this.keyInput = byId("stream-key");
    this.status = byId("stream-status");
    this.list = byId("stream-subscriptions");
    this.log = byId("stream-log");
    this.counts = byId("stream-counts");
    this.pauseButton = byId("stream-pause");
    this.keepInput = byId("stream-keep");
    this.subscriptions = new Map();
    this.buffer = new LogBuffer(clampKeep(this.keepInput.value));
    this.pending = [];
    this.frame = null;
    this.paused = false;
    this.filter = "";
    this.received = 0;
    this.unseen = 0;
    this.visible = false;
    this.topicsLoaded = false;
    this.wire();
  }

  wire() {
    byId("stream-form").addEventListener("submit", (event) => {
      event.preventDefault();
      this.subscribe();
    });
    byId("stream-topics-reload").addEventListener("click", () => this.loadTopics());
    byId("stream-publish").addEventListener("click", () => openPublish(this.topicSelect.value));
    this.pauseButton.addEventListener("click", () => this.togglePause());
    byId("stream-filter").addEventListener("input", (event) => {
      this.filter = event.target.value.trim().toLowerCase();
      this.renderAll();
    });
    this.keepInput.addEventListener("change", () => {
      const limit = clampKeep(this.keepInput.value);
      this.keepInput.value = String(limit);
      this.dropped(this.buffer.setLimit(limit));
      this.renderAll();
    });
    byId("stream-clear").addEventListener("click", () => {
      this.dropped(this.buffer.clear());
      this.pending = [];
      this.unseen = 0;
      this.renderAll();
    });
  }

  show() {
    if (this.visible) return;
    this.visible = true;
    if (!this.topicsLoaded) this.loadTopics();
    for (const subscription of this.subscriptions.values()) subscription.stream.resume();
  }

  hide() {
    if (!this.visible) return;
    this.visible = false;
    for (const subscription of this.subscriptions.values()) subscription.stream.pause();
  }

  async loadTopics() {
    try {
      const { topics } = await api.get("/api/topics");
      const names = topics.map((topic) => topic.name).sort();
      setOptions(this.topicSelect, names, { placeholder: "no topics yet" });
      this.topicsLoaded = true;
      if (names.length === 0) setStatus(this.status, "No topics yet: create one or publish to one.");
    } catch (error) {
      setStatus(this.status, `Could not list the topics: ${api.errorText(error)}`, "error");
    }
  }

  subscribe() {
    const topic = this.topicSelect.value;
    const key = this.keyInput.value.trim();
    const id = JSON.stringify([topic, key]);
    if (!topic) return setStatus(this.status, "Pick a topic first.", "error");
    if (this.subscriptions.has(id)) return setStatus(this.status, `Already subscribed to ${label(topic, key)}.`);
    if (this.subscriptions.size >= SUBSCRIPTIONS_MAX) {
      return setStatus(this.status, `At most ${SUBSCRIPTIONS_MAX} subscriptions per tab: unsubscribe from one first.`, "error");
    }
    const subscription = this.subscriptionRow(id, topic, key);
    subscription.stream = new TopicStream({
      topic,
      key,
      from: "latest",
      onRecord: (record) => this.add(subscription, record),
      onLagged: (data) => this.lagged(topic, data),
      onState: (state, detail) => showState(subscription.stateNode, state, detail),
    });
    this.subscriptions.set(id, subscription);
    this.list.append(subscription.row);
    subscription.stream.start();
    setStatus(this.status, `Subscribed to ${label(topic, key)}.`, "ok");
  }

  subscriptionRow(id, topic, key) {
    const name = label(topic, key);
    const stateNode = el("span", { class: "state connecting", testid: "stream-subscription-state", text: "connecting" });
    const countNode = el("span", { class: "hint", testid: "stream-subscription-count", text: "0 records" });
    const button = el("button", {
      type: "button",
      class: "secondary",
      testid: "stream-unsubscribe",
      "aria-label": `Unsubscribe from ${name}`,
      text: "Unsubscribe",
      on: { click: () => this.unsubscribe(id) },
    });
    const row = el(
      "li",
      { testid: "stream-subscription", dataset: { topic, key } },
      el("span", { class: "name", text: name }),
      stateNode,
      countNode,
      button,
    );
    return { topic, key, row, stateNode, countNode, count: 0, stream: null };
  }

  unsubscribe(id) {
    const subscription = this.subscriptions.get(id);
    if (!subscription) return;
    subscription.stream.close();
    subscription.row.remove();
    this.subscriptions.delete(id);
    setStatus(this.status, `Unsubscribed from ${label(subscription.topic, subscription.key)}.`);
    this.topicSelect.focus();
  }

  add(subscription, record) {
    subscription.count += 1;
    this.received += 1;
    this.push({ record, search: searchText(record), node: null });
  }

  lagged(topic, data) {
    const partition = data.partition ?? "?";
    const text =
      data.reason === "retention"
        ? `${topic} partition ${partition}: retention deleted records before they were streamed; the stream goes on from the oldest kept.`
        : `${topic} partition ${partition}: this stream fell behind; it goes on from the log, nothing is skipped.`;
    this.push({ notice: text, atMs: Date.now(), search: text.toLowerCase(), node: null });
    setStatus(this.status, text);
  }

  push(entry) {
    this.dropped(this.buffer.push(entry));
    if (this.paused) {
      this.unseen += 1;
    } else {
      this.pending.push(entry);
    }
    this.frame ??= requestAnimationFrame(() => this.flush());
  }

  /** Entries the buffer let go: their nodes leave the log (not while paused). */
  dropped(entries) {
    for (const entry of entries) {
      entry.dropped = true;
      if (!this.paused) entry.node?.remove();
    }
  }

  flush() {
    this.frame = null;
    if (!this.paused && this.pending.length > 0) {
      const fragment = document.createDocumentFragment();
      for (let i = this.pending.length - 1; i >= 0; i -= 1) {
        const entry = this.pending[i];
        if (!entry.dropped && matches(entry, this.filter)) fragment.append(nodeOf(entry));
      }
      this.pending = [];
      this.log.prepend(fragment);
    }
    this.showCounts();
  }

  renderAll() {
    this.pending = [];
    this.log.replaceChildren(...this.buffer.newestFirst(this.filter).map(nodeOf));
    this.showCounts();
  }

  togglePause() {
    this.paused = !this.paused;
    this.pauseButton.setAttribute("aria-pressed", String(this.paused));
    this.pauseButton.textContent = this.paused ? "Resume" : "Pause";
    if (!this.paused) {
      this.unseen = 0;
      this.renderAll();
    }
    this.showCounts();
  }

  showCounts() {
    for (const subscription of this.subscriptions.values()) {
      subscription.countNode.textContent = `${formatCount(subscription.count)} records`;
    }
    const parts = [
      `${this.log.childElementCount} shown of ${this.buffer.size} kept (last ${this.buffer.limit})`,
      `${formatCount(this.received)} received`,
    ];
    if (this.paused) parts.push(`paused: ${formatCount(this.unseen)} new not shown`);
    this.counts.textContent = parts.join(" · ");
  }
}

function nodeOf(entry) {
  entry.node ??= entry.notice ? noticeItem(entry.notice, entry.atMs) : recordItem(entry.record, "log-entry");
  return entry.node;
}

function label(topic, key) {
  return key ? `${topic} (key ${key})` : topic;
}

function showState(node, state, detail) {
  node.textContent = detail ? `${state} ${detail}` : state;
  node.setAttribute("class", `state ${state}`);
}
