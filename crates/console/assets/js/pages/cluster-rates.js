// Records per second of each topic: the sum of its partitions' high
// watermarks (GET /api/topics) sampled at each cluster poll, turned into
// rates between samples and drawn as sparklines.

import { el } from "../dom.js";
import { formatCount } from "../format.js";
import { keepLast, ratesOf, topicTotal } from "../chart-math.js";
import { sparkline } from "../svg.js";

/** Samples kept per topic: two minutes at one sample every 2 s. */
const SAMPLES_MAX = 61;

export class RatesView {
  constructor(list) {
    this.list = list;
    /** topic -> [{atMs, total}], oldest first */
    this.samples = new Map();
    /** topic -> {row, value, chart} */
    this.rows = new Map();
  }

  /** Takes one sample of every topic of a GET /api/topics answer. */
  sample(topics, atMs) {
    const names = new Set();
    for (const topic of topics) {
      names.add(topic.name);
      if (!this.samples.has(topic.name)) this.samples.set(topic.name, []);
      keepLast(this.samples.get(topic.name), SAMPLES_MAX - 1).push({ atMs, total: topicTotal(topic) });
    }
    for (const name of [...this.samples.keys()]) {
      if (!names.has(name)) this.forget(name);
    }
    this.render();
  }

  forget(name) {
    this.samples.delete(name);
    this.rows.get(name)?.row.remove();
    this.rows.delete(name);
  }

  render() {
    const names = [...this.samples.keys()].sort();
    for (const name of names) {
      const rates = ratesOf(this.samples.get(name));
      const row = this.rows.get(name) ?? this.addRow(name);
      const now = rates.length > 0 ? rates[rates.length - 1] : null;
      row.value.textContent = now === null ? "sampling…" : `${formatCount(now)} records/s`;
      row.row.dataset.rate = now === null ? "" : String(now);
      row.chart.replaceChildren(sparkline(rates, { label: `${name}: records per second, last two minutes` }));
    }
    const ordered = names.map((name) => this.rows.get(name).row);
    if (ordered.some((row, index) => this.list.children[index] !== row)) this.list.replaceChildren(...ordered);
  }

  addRow(name) {
    const value = el("span", { class: "rate-value" });
    const chart = el("div");
    const row = el("li", { testid: "cluster-rate", dataset: { topic: name } }, value, el("span", { class: "rate-name", text: name }), chart);
    const entry = { row, value, chart };
    this.rows.set(name, entry);
    return entry;
  }
}
