// City dashboard: districts and their stations coloured by AQI (air) and
// congestion (traffic) from GET /api/city/latest every 5 s and, between
// polls, from the Server-Sent Events of city.latest; a chart of a chosen
// station (city-chart.js) and the alert feed (city-alerts.js). With no
// city topic yet it says how to start one, and opens no stream.

import * as api from "../api.js";
import { byId, el, setStatus } from "../dom.js";
import {
  LATEST_TOPIC,
  groupByDistrict,
  hasCityTopics,
  isReading,
  mergeReading,
  parseValue,
  stationLook,
  ALERTS_TOPIC,
} from "../city-model.js";
import { TopicStream } from "../topic-stream.js";
import { AlertFeed } from "./city-alerts.js";
import { StationChart } from "./city-chart.js";

const POLL_MS = 5000;
/** After a 404 without an API error body (the route is not on this node), ask again after this. */
const ROUTE_RETRY_MS = 60000;

export function setupCity() {
  const page = new CityPage();
  return { show: () => page.show(), hide: () => page.hide() };
}

class CityPage {
  constructor() {
    this.status = byId("city-status");
    this.empty = byId("city-empty");
    this.content = byId("city-content");
    this.grid = byId("city-districts");
    this.stationSelect = byId("city-station");
    /** station -> newest reading */
    this.stations = new Map();
    this.cards = new Map();
    this.tiles = new Map();
    this.topics = new Set();
    this.latestStream = null;
    this.alerts = new AlertFeed(byId("city-alerts"));
    this.chart = new StationChart({
      plot: byId("city-chart-plot"),
      caption: byId("city-chart-caption"),
      metricSelect: byId("city-metric"),
      onReading: (reading) => this.merge(reading),
    });
    this.selected = null;
    this.stationOptions = "";
    this.frame = null;
    this.routeRetryAtMs = 0;
    this.timer = null;
    this.visible = false;
    this.stationSelect.addEventListener("change", () => this.select(this.stationSelect.value));
  }

  show() {
    if (this.visible) return;
    this.visible = true;
    this.poll();
    this.timer = setInterval(() => this.poll(), POLL_MS);
    if (this.topics.size > 0) this.resumeStreams();
  }

  hide() {
    if (!this.visible) return;
    this.visible = false;
    clearInterval(this.timer);
    this.timer = null;
    this.latestStream?.pause();
    this.chart.pause();
    this.alerts.stop();
  }

  async poll() {
    let names;
    try {
      names = (await api.get("/api/topics")).topics.map((topic) => topic.name);
    } catch (error) {
      setStatus(this.status, `Could not list the topics: ${api.errorText(error)}`, "error");
      return;
    }
    if (!this.visible) return;
    if (!hasCityTopics(names)) return this.showEmpty();
    this.empty.hidden = true;
    this.content.hidden = false;
    this.topics = new Set(names);
    await this.loadLatest();
    if (this.visible) this.resumeStreams();
  }

  showEmpty() {
    this.empty.hidden = false;
    this.content.hidden = true;
    setStatus(this.status, "");
    this.topics = new Set();
    this.latestStream?.close();
    this.latestStream = null;
    this.alerts.close();
    this.chart.closeStreams();
  }

  async loadLatest() {
    if (Date.now() < this.routeRetryAtMs) return;
    try {
      const answer = await api.get("/api/city/latest");
      for (const reading of answer?.stations ?? []) if (isReading(reading)) mergeReading(this.stations, reading);
      this.render();
      setStatus(this.status, this.stations.size ? "" : "No readings yet: the city's publishers have not sent any.");
    } catch (error) {
      setStatus(this.status, latestProblem(error));
      if (error instanceof api.ApiError && error.code === "HTTP_404") this.routeRetryAtMs = Date.now() + ROUTE_RETRY_MS;
    }
  }

  /** Opens (or goes on with) the streams of the topics that exist. */
  resumeStreams() {
    if (this.topics.has(LATEST_TOPIC)) {
      this.latestStream ??= this.openLatest();
      this.latestStream.resume();
    }
    if (this.topics.has(ALERTS_TOPIC)) this.alerts.start();
    this.chart.openStreams(this.topics);
    this.chart.resume();
  }

  openLatest() {
    const stream = new TopicStream({
      topic: LATEST_TOPIC,
      from: "latest",
      maxPerKeyPerS: 1,
      onRecord: (record) => {
        const reading = parseValue(record);
        if (isReading(reading)) this.merge(reading);
      },
    });
    stream.start();
    return stream;
  }

  merge(reading) {
    const wasEmpty = this.stations.size === 0;
    if (mergeReading(this.stations, reading)) this.renderSoon();
    // The first reading ends the "no readings yet" notice of an empty poll.
    if (wasEmpty && this.stations.size > 0) setStatus(this.status, "");
  }

  renderSoon() {
    this.frame ??= requestAnimationFrame(() => {
      this.frame = null;
      this.render();
    });
  }

  render() {
    const districts = groupByDistrict([...this.stations.values()]);
    const cards = districts.map(({ district, stations }) => {
      const card = this.cards.get(district) ?? this.addCard(district);
      const tiles = stations.map((reading) => this.updateTile(reading));
      if (tiles.some((tile, index) => card.list.children[index] !== tile)) card.list.replaceChildren(...tiles);
      return card.node;
    });
    if (cards.some((card, index) => this.grid.children[index] !== card)) this.grid.replaceChildren(...cards);
    this.updateStationOptions(districts);
    if (!this.selected && districts.length > 0) this.select(districts[0].stations[0].station);
  }

  addCard(district) {
    const list = el("ul", { class: "stations" });
    const node = el("section", { class: "district", testid: "city-district", dataset: { district } },
      el("h3", { text: district }), list);
    const card = { node, list };
    this.cards.set(district, card);
    return card;
  }

  updateTile(reading) {
    let tile = this.tiles.get(reading.station);
    if (!tile) {
      const button = el("button", { type: "button", class: "station", testid: "city-station", "aria-pressed": "false" });
      button.addEventListener("click", () => this.select(reading.station));
      tile = el("li", {}, button);
      this.tiles.set(reading.station, tile);
    }
    const button = tile.firstChild;
    const look = stationLook(reading);
    button.setAttribute("class", `station ${look.className}`);
    Object.assign(button.dataset, { station: reading.station, district: reading.district, kind: reading.kind, level: look.className });
    button.setAttribute("aria-label", `${reading.station}: ${look.value}${look.label ? `, ${look.label}` : ""}`);
    button.replaceChildren(
      el("span", { class: "station-name", text: reading.station }),
      el("span", { class: "station-value", text: look.value }),
    );
    return tile;
  }

  updateStationOptions(districts) {
    const wanted = districts.flatMap((d) => d.stations.map((s) => s.station)).join("\n");
    if (this.stationOptions === wanted) return;
    this.stationOptions = wanted;
    this.stationSelect.replaceChildren(
      ...districts.map(({ district, stations }) =>
        el("optgroup", { label: district }, stations.map((s) => el("option", { value: s.station, text: s.station }))),
      ),
    );
    if (this.selected) this.stationSelect.value = this.selected;
  }

  select(station) {
    const reading = this.stations.get(station);
    if (!reading || station === this.selected) return;
    this.selected = station;
    this.stationSelect.value = station;
    for (const [name, tile] of this.tiles) tile.firstChild.setAttribute("aria-pressed", String(name === station));
    this.chart.choose(reading, this.topics);
  }
}

/** What a failed GET /api/city/latest means for the page (not an alarm). */
function latestProblem(error) {
  if (!(error instanceof api.ApiError)) return `Could not get the stations: ${api.errorText(error)}`;
  if (error.status === 404 && error.code === "HTTP_404") {
    return "This node does not serve /api/city/latest; stations come from the live stream.";
  }
  if (error.status === 404) return "No readings yet: the city's topics are empty.";
  if (error.status === 503) return "The cluster cannot answer right now; trying again.";
  return `Could not get the stations: ${api.errorText(error)}`;
}
