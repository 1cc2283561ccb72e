// One record as a list item (live stream, consume): time, partition and
// offset, topic, key, value, headers, all as text.

import { el } from "./dom.js";
import { displayHeaders, displayValue, formatTime } from "./format.js";

export function recordItem(record, testid) {
  const headers = displayHeaders(record.headers);
  return el(
    "li",
    {
      class: "log-entry",
      testid,
      dataset: { topic: record.topic, partition: String(record.partition), offset: String(record.offset) },
    },
    el("span", { class: "meta", text: `${formatTime(record.timestamp)} ${record.partition}:${record.offset}` }),
    el("span", { class: "topic", text: record.topic }),
    record.key === null || record.key === undefined ? null : el("span", { class: "key", text: record.key }),
    el("span", { class: "value", text: displayValue(record) }),
    headers ? el("span", { class: "headers", text: headers }) : null,
  );
}

/** A notice line in a log (a stream that fell behind, an error). */
export function noticeItem(text, atMs = Date.now(), testid = "log-notice") {
  return el("li", { class: "log-notice", testid, text: `${formatTime(atMs)} ${text}` });
}
