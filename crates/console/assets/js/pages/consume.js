// Consume as a group: POST /api/groups/{group}/records?topic=T&limit=N
// answers the records the group has not read yet and commits past them;
// the page reads on the button and every 30 s while shown (never while
// hidden: a read moves the group on), and shows the group's lag on the
// topic from GET /api/groups/{group}.

import * as api from "../api.js";
import { byId, el, setOptions, setStatus } from "../dom.js";
import { formatClock } from "../format.js";
import { recordItem } from "../record-item.js";

const REFRESH_MS = 30000;
/** Record lines kept on the page. */
const RECORDS_MAX = 500;

export function setupConsume() {
  const page = new ConsumePage();
  return { show: () => page.show(), hide: () => page.hide() };
}

class ConsumePage {
  constructor() {
    this.group = byId("consume-group");
    this.topic = byId("consume-topic");
    this.limit = byId("consume-limit");
    this.auto = byId("consume-auto");
    this.status = byId("consume-status");
    this.lagRows = byId("consume-lag-rows");
    this.lagCaption = byId("consume-lag-caption");
    this.records = byId("consume-records");
    this.target = null;
    this.timer = null;
    this.visible = false;
    this.reading = false;
    byId("consume-form").addEventListener("submit", (event) => {
      event.preventDefault();
      this.target = { group: this.group.value.trim(), topic: this.topic.value.trim() };
      this.read();
      this.schedule();
    });
    this.auto.addEventListener("change", () => this.schedule());
  }

  show() {
    if (this.visible) return;
    this.visible = true;
    this.loadLists();
    if (this.target) this.loadLag();
    this.schedule();
  }

  hide() {
    this.visible = false;
    this.schedule();
  }

  /** Reads every REFRESH_MS while shown, chosen and asked for. */
  schedule() {
    clearInterval(this.timer);
    this.timer = null;
    if (this.visible && this.target && this.auto.checked) {
      this.timer = setInterval(() => this.read(), REFRESH_MS);
    }
  }

  async loadLists() {
    const [groups, topics] = await Promise.allSettled([api.get("/api/groups"), api.get("/api/topics")]);
    if (groups.status === "fulfilled") {
      setOptions(byId("consume-groups"), groups.value.groups.map((g) => g.group).sort());
    }
    if (topics.status === "fulfilled") {
      setOptions(byId("consume-topics"), topics.value.topics.map((t) => t.name).sort());
    }
  }

  async read() {
    if (this.reading || !this.target) return;
    const { group, topic } = this.target;
    const limit = Math.max(1, Math.min(10000, Math.round(Number(this.limit.value)) || 100));
    this.reading = true;
    try {
      const path = `/api/groups/${encodeURIComponent(group)}/records?${new URLSearchParams({ topic, limit: String(limit) })}`;
      const answer = await api.post(path);
      this.showRecords(answer.records ?? []);
      setStatus(this.status, readSummary(group, topic, answer.records?.length ?? 0, limit), "ok");
    } catch (error) {
      setStatus(this.status, `Could not read for ${group}: ${api.errorText(error)}`, "error");
    } finally {
      this.reading = false;
    }
    this.loadLag();
  }

  showRecords(records) {
    const fragment = document.createDocumentFragment();
    for (let i = records.length - 1; i >= 0; i -= 1) fragment.append(recordItem(records[i], "consume-record"));
    this.records.prepend(fragment);
    while (this.records.childElementCount > RECORDS_MAX) this.records.lastElementChild.remove();
  }

  async loadLag() {
    if (!this.target) return;
    const { group, topic } = this.target;
    try {
      const described = await api.get(`/api/groups/${encodeURIComponent(group)}`);
      const offsets = (described.offsets ?? []).filter((o) => o.topic === topic);
      offsets.sort((a, b) => a.partition - b.partition);
      this.lagRows.replaceChildren(...offsets.map(lagRow));
      const total = offsets.reduce((sum, o) => sum + o.lag, 0);
      this.lagCaption.textContent = offsets.length
        ? `${group} on ${topic}: ${total} records not read yet (${described.state}, ${described.member_count} members).`
        : `${group} has no committed offset on ${topic} yet.`;
      this.lagCaption.dataset.lag = String(total);
    } catch (error) {
      this.lagRows.replaceChildren();
      this.lagCaption.dataset.lag = "";
      this.lagCaption.textContent =
        error instanceof api.ApiError && error.status === 404
          ? `${group} has no committed offsets yet.`
          : `Could not get the lag of ${group}: ${api.errorText(error)}`;
    }
  }
}

function lagRow(offset) {
  return el(
    "tr",
    { testid: "consume-lag-row", dataset: { partition: String(offset.partition) } },
    el("td", { text: offset.topic }),
    el("td", { text: offset.partition }),
    el("td", { text: offset.committed }),
    el("td", { text: offset.high_watermark }),
    el("td", { text: offset.lag, class: offset.lag > 0 ? "lagging" : "" }),
  );
}

function readSummary(group, topic, count, limit) {
  const at = formatClock(Date.now());
  if (count === 0) return `${at}: nothing unread for ${group} in ${topic}.`;
  const more = count >= limit ? " There may be more: read again." : "";
  return `${at}: ${count} records of ${topic} read and committed for ${group}.${more}`;
}
