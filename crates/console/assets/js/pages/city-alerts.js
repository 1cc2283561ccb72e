// The city's alert feed: Server-Sent Events of city.alerts (the last 30
// minutes first, then live), newest first, coloured by severity.

import { el } from "../dom.js";
import { formatTime, formatNumber } from "../format.js";
import { ALERTS_TOPIC, parseValue } from "../city-model.js";
import { TopicStream } from "../topic-stream.js";

/** Alerts kept on the page. */
const ALERTS_MAX = 100;
const HISTORY_MS = 30 * 60 * 1000;

export class AlertFeed {
  constructor(list) {
    this.list = list;
    this.stream = null;
  }

  /** Streams the alerts (once the topic exists), or goes on after a stop. */
  start() {
    if (this.stream) return this.stream.resume();
    this.stream = new TopicStream({
      topic: ALERTS_TOPIC,
      from: String(Date.now() - HISTORY_MS),
      onRecord: (record) => this.add(record),
    });
    this.stream.start();
  }

  /** Closes the connection, keeping the position for start(). */
  stop() {
    this.stream?.pause();
  }

  /** Forgets the stream (the topic went away). */
  close() {
    this.stream?.close();
    this.stream = null;
  }

  add(record) {
    const alert = parseValue(record);
    if (!alert || typeof alert !== "object") return;
    this.list.prepend(alertItem(alert, record));
    while (this.list.childElementCount > ALERTS_MAX) this.list.lastElementChild.remove();
  }
}

function alertItem(alert, record) {
  const severity = String(alert.severity ?? "warning");
  const look = severity === "critical" ? "critical" : "warning";
  const where = [alert.station, alert.district ? `(${alert.district})` : ""].filter(Boolean).join(" ");
  const measured = alert.metric ? `${alert.metric} ${formatNumber(Number(alert.value))}` : "";
  return el(
    "li",
    {
      class: `severity-${look}`,
      testid: "city-alert",
      dataset: { severity, station: alert.station ?? "", offset: `${record.partition}:${record.offset}` },
    },
    el("span", { class: "meta", text: formatTime(Number(alert.ts_ms ?? record.timestamp)) }),
    el("span", { class: "severity", text: severity }),
    el("span", { class: "topic", text: where }),
    measured ? el("span", { class: "key", text: measured }) : null,
    el("span", { class: "value", text: alert.reason ?? "" }),
  );
}
