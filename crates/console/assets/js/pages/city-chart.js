// The chart of one station: its readings of one metric from the Server-
// Sent Events of its topic (key city/<district>/<kind>/<station>, the last
// 10 minutes first), and the forecast of city.analytics (key
// <station>/<metric>) drawn as a band past the last reading.

import {
  ANALYTICS_TOPIC,
  analyticsKey,
  defaultMetric,
  forecastBand,
  isReading,
  parseValue,
  readingKey,
  topicOfKind,
} from "../city-model.js";
import { keepLast } from "../chart-math.js";
import { setOptions } from "../dom.js";
import { formatNumber } from "../format.js";
import { lineChart } from "../svg.js";
import { TopicStream } from "../topic-stream.js";

const POINTS_MAX = 120;
const HISTORY_MS = 10 * 60 * 1000;

export class StationChart {
  /** parts: plot, caption, metricSelect; onReading(reading) for each live reading. */
  constructor({ plot, caption, metricSelect, onReading }) {
    this.plot = plot;
    this.caption = caption;
    this.metricSelect = metricSelect;
    this.onReading = onReading;
    this.station = null;
    this.metric = "";
    this.readings = [];
    this.forecast = null;
    this.readingStream = null;
    this.analyticsStream = null;
    this.frame = null;
    this.state = "";
    this.topics = new Set();
    this.points = [];
    metricSelect.addEventListener("change", () => this.chooseMetric(metricSelect.value));
  }

  /** Charts `reading`'s station (its newest reading), from its history on. */
  choose(reading, topics) {
    this.closeStreams();
    this.station = reading;
    this.readings = [];
    this.forecast = null;
    const metrics = Object.keys(reading.values ?? {}).sort();
    setOptions(this.metricSelect, metrics);
    this.metric = defaultMetric(reading.kind, reading.values);
    this.metricSelect.value = this.metric;
    this.openStreams(topics);
    this.draw();
  }

  chooseMetric(metric) {
    if (!this.station || metric === this.metric) return;
    this.metric = metric;
    this.forecast = null;
    this.analyticsStream?.close();
    this.analyticsStream = null;
    this.openStreams(this.topics);
    this.draw();
  }

  /** Opens the streams whose topics exist (again when new topics appear). */
  openStreams(topics) {
    this.topics = topics;
    if (!this.station) return;
    const readingTopic = topicOfKind(this.station.kind);
    if (!this.readingStream && topics.has(readingTopic)) {
      const key = readingKey(this.station);
      this.readingStream = this.stream(readingTopic, key, (record) => this.addReading(record, key));
    }
    if (!this.analyticsStream && topics.has(ANALYTICS_TOPIC) && this.metric) {
      const key = analyticsKey(this.station.station, this.metric);
      this.analyticsStream = this.stream(ANALYTICS_TOPIC, key, (record) => this.addAnalytics(record, key));
    }
  }

  stream(topic, key, onRecord) {
    const stream = new TopicStream({
      topic,
      key,
      from: String(Date.now() - HISTORY_MS),
      onRecord,
      onState: (state, detail) => {
        this.state = state === "live" ? "" : `${topic}: ${state} ${detail}`.trim();
        this.showCaption();
      },
    });
    stream.start();
    return stream;
  }

  /** Closes the connections, keeping positions (resume() goes on). */
  pause() {
    this.readingStream?.pause();
    this.analyticsStream?.pause();
  }

  resume() {
    this.readingStream?.resume();
    this.analyticsStream?.resume();
  }

  closeStreams() {
    this.readingStream?.close();
    this.analyticsStream?.close();
    this.readingStream = null;
    this.analyticsStream = null;
  }

  addReading(record, key) {
    // Without + or #, the key filter is a prefix: north-air-1 also matches north-air-10.
    if (record.key !== key) return;
    const reading = parseValue(record);
    if (!isReading(reading)) return;
    this.readings.push(reading);
    keepLast(this.readings, POINTS_MAX);
    this.onReading?.(reading);
    this.scheduleDraw();
  }

  addAnalytics(record, key) {
    if (record.key !== key) return;
    const band = forecastBand(parseValue(record));
    if (band) {
      this.forecast = band;
      this.scheduleDraw();
    }
  }

  scheduleDraw() {
    this.frame ??= requestAnimationFrame(() => {
      this.frame = null;
      this.draw();
    });
  }

  draw() {
    if (!this.station) return;
    const metric = this.metric;
    const points = this.readings
      .filter((r) => Number.isFinite(r.values?.[metric]))
      .map((r) => ({ x: Number(r.ts_ms), y: r.values[metric] }));
    const unit = this.station.units?.[metric] ?? "";
    const label = `${this.station.station} ${metric}${unit ? ` (${unit})` : ""}`;
    const width = this.plot.clientWidth || 640;
    this.plot.replaceChildren(lineChart({ points, band: this.forecast, label, unit, width }));
    this.plot.dataset.points = String(points.length);
    this.plot.dataset.forecast = this.forecast ? "yes" : "no";
    this.points = points;
    this.showCaption();
  }

  showCaption() {
    if (!this.station) return;
    const { station, district } = this.station;
    const unit = this.station.units?.[this.metric] ?? "";
    const parts = [`${station} (${district}), ${this.metric}${unit ? ` in ${unit}` : ""}`];
    const points = this.points;
    parts.push(points.length ? `${points.length} readings, last ${formatNumber(points[points.length - 1].y)}` : "waiting for readings");
    if (this.forecast) {
      const minutes = Math.round((this.forecast.atMs - this.forecast.startMs) / 60000);
      parts.push(
        `forecast in ${minutes} min: ${formatNumber(this.forecast.value)} (${formatNumber(this.forecast.low)}–${formatNumber(this.forecast.high)})`,
      );
    }
    if (this.state) parts.push(this.state);
    this.caption.textContent = `${parts.join("; ")}.`;
  }
}
