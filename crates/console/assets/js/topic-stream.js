// One live subscription to a topic's Server-Sent Events that never skips
// and never repeats a record. Every event's id lists each partition's next
// offset; the browser's EventSource sends the last one as Last-Event-ID
// when it reconnects by itself, and when this class opens a new
// EventSource (after the browser gave up, on another node, or after a
// pause) it asks for `?from=<that id>`, which the API reads the same way.
// Before the first event, "latest" is pinned to the partitions' high
// watermarks at subscribe time, so even an early reconnect has no gap.

import * as api from "./api.js";

const RETRY_FIRST_MS = 1000;
const RETRY_MAX_MS = 15000;
/** Errors in a row while reconnecting before asking whether the node is gone. */
const ERRORS_BEFORE_NODE_CHECK = 2;

export class TopicStream {
  /**
   * options: topic; key (filter, optional); from ("latest", "earliest", ms
   * since the epoch, or "p:o,..."); maxPerKeyPerS (optional); onRecord(record,
   * id); onLagged(data); onState(state, detail) with state one of
   * "connecting", "live", "reconnecting", "retrying", "paused", "stopped".
   */
  constructor(options) {
    this.options = options;
    this.lastId = null;
    this.startFrom = null;
    this.source = null;
    this.timer = null;
    this.retryMs = RETRY_FIRST_MS;
    this.errors = 0;
    this.closed = false;
    this.paused = false;
    this.received = 0;
    this.unlisten = api.onNodeChange(() => this.reopen());
  }

  /** Opens the stream (pinning "latest" first). */
  async start() {
    this.startFrom = await pinStart(this.options.topic, this.options.from ?? "latest");
    if (!this.closed && !this.paused) this.open();
  }

  /** Closes the connection but keeps the position: resume() goes on from it. */
  pause() {
    this.paused = true;
    this.disconnect();
    this.state("paused");
  }

  resume() {
    if (this.closed || !this.paused) return;
    this.paused = false;
    if (this.startFrom !== null) this.open();
  }

  close() {
    this.closed = true;
    this.disconnect();
    this.unlisten();
  }

  /** Where the next connection starts: after the last event, else the pinned start. */
  position() {
    return this.lastId ?? this.startFrom;
  }

  /** The stream's API path, from the current position. */
  path() {
    const params = new URLSearchParams({ from: this.position() });
    if (this.options.key) params.set("key", this.options.key);
    if (this.options.maxPerKeyPerS) params.set("max_per_key_per_s", String(this.options.maxPerKeyPerS));
    return api.topicPath(this.options.topic, `/stream?${params}`);
  }

  open() {
    this.disconnect();
    const source = new EventSource(api.url(this.path()));
    this.source = source;
    this.state("connecting");
    source.addEventListener("open", () => this.opened(source));
    source.addEventListener("message", (event) => this.receive(event));
    source.addEventListener("lagged", (event) => this.lagged(event));
    source.addEventListener("error", () => this.failed(source));
  }

  disconnect() {
    clearTimeout(this.timer);
    this.timer = null;
    this.source?.close();
    this.source = null;
  }

  reopen() {
    if (this.closed || this.paused || this.startFrom === null) return;
    this.open();
  }

  opened(source) {
    if (source !== this.source) return;
    this.retryMs = RETRY_FIRST_MS;
    this.errors = 0;
    this.state("live");
  }

  receive(event) {
    let record;
    try {
      record = JSON.parse(event.data);
    } catch {
      return;
    }
    if (event.lastEventId) this.lastId = event.lastEventId;
    this.received += 1;
    this.options.onRecord?.(record, this.lastId);
  }

  lagged(event) {
    let data = {};
    try {
      data = JSON.parse(event.data);
    } catch {
      data = {};
    }
    this.options.onLagged?.(data);
  }

  failed(source) {
    if (source !== this.source || this.closed) return;
    this.errors += 1;
    if (source.readyState === EventSource.CONNECTING) {
      // The browser reconnects by itself, sending Last-Event-ID.
      this.state("reconnecting");
      if (this.errors >= ERRORS_BEFORE_NODE_CHECK) api.findNode();
      return;
    }
    // The browser gave up (an error status such as 503, or no answer).
    this.source = null;
    source.close();
    this.state("retrying", `in ${Math.round(this.retryMs / 1000)} s`);
    this.timer = setTimeout(() => this.recover(), this.retryMs);
    this.retryMs = Math.min(this.retryMs * 2, RETRY_MAX_MS);
  }

  /**
   * After the browser gave up: asks once more with fetch to read why. A
   * refusal of the request itself (4xx: an unknown topic, a bad key
   * filter) stops the stream with the API's message; anything else
   * (503, no answer) opens it again.
   */
  async recover() {
    this.timer = null;
    const refused = await refusal(api.url(this.path()));
    if (this.closed || this.paused) return;
    if (refused) {
      this.disconnect();
      this.state("stopped", `(${refused})`);
      return;
    }
    this.reopen();
  }

  state(name, detail = "") {
    this.options.onState?.(name, detail);
  }
}

/** "latest" as the partitions' current high watermarks ("0:12,1:7"); other starts as given. */
async function pinStart(topic, from) {
  if (from !== "latest") return String(from);
  try {
    const described = await api.get(api.topicPath(topic));
    const positions = (described.partitions ?? []).map((p) => `${p.partition}:${p.high_watermark}`);
    return positions.length > 0 ? positions.join(",") : "latest";
  } catch {
    return "latest";
  }
}

/** The API's message when it refuses `url` with a 4xx; null when it streams, fails otherwise or does not answer. */
async function refusal(url) {
  const request = new AbortController();
  try {
    const response = await fetch(url, { signal: request.signal, headers: { accept: "text/event-stream" } });
    if (response.ok || response.status >= 500) {
      request.abort();
      return null;
    }
    const body = await response.json().catch(() => null);
    return body?.error?.message ?? `HTTP ${response.status}`;
  } catch {
    return null;
  }
}
