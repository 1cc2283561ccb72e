// Tests of the console's pure modules (no DOM, no network), run by
// `node --test` from tests/assets.rs when node is on the PATH.

import { test } from "node:test";
import assert from "node:assert/strict";

import { displayHeaders, displayValue, formatBytes, formatCount, formatTime, searchText } from "../../assets/js/format.js";
import { LogBuffer, clampKeep, KEEP_MAX, KEEP_MIN } from "../../assets/js/log-buffer.js";
import { NodeDirectory, originOf } from "../../assets/js/nodes.js";
import { extent, keepLast, linearScale, pad, pointList, ratesOf, topicTotal } from "../../assets/js/chart-math.js";
import {
  defaultMetric,
  forecastBand,
  groupByDistrict,
  hasCityTopics,
  mergeReading,
  readingKey,
  stationLook,
} from "../../assets/js/city-model.js";
import { buildRecord, describeWritten } from "../../assets/js/publish-body.js";

const page = { protocol: "http:", hostname: "127.0.0.1" };

test("a record's value shows compact JSON, text as is, base64 marked", () => {
  assert.equal(displayValue({ value: '{ "pm25": 12.5 }' }), '{"pm25":12.5}');
  assert.equal(displayValue({ value: "{not json" }), "{not json");
  assert.equal(displayValue({ value: "raw text" }), "raw text");
  assert.equal(displayValue({ value: "AP7/", value_encoding: "base64" }), "(base64) AP7/");
  assert.equal(displayHeaders({ priority: "high", unit: "ug/m3" }), "priority=high unit=ug/m3");
  const record = { topic: "Air", partition: 1, offset: 7, key: "K", value: "V", headers: { priority: "HIGH" } };
  assert.equal(searchText(record), "air 1:7 k v priority=high");
});

test("numbers and times format for people", () => {
  assert.match(formatTime(Date.UTC(2026, 0, 1, 12, 3, 7, 215)), /^\d\d:\d\d:\d\d\.215$/);
  assert.equal(formatTime(NaN), "");
  assert.equal(formatCount(12500), "12.5k");
  assert.equal(formatCount(42), "42");
  assert.equal(formatCount(2.5), "2.50");
  assert.equal(formatBytes(512), "512 B");
  assert.equal(formatBytes(1536), "1.5 KiB");
});

test("the log keeps the newest entries and says which it dropped", () => {
  const log = new LogBuffer(10);
  const entries = Array.from({ length: 12 }, (_, i) => ({ id: i, search: i % 2 ? "odd" : "even" }));
  const dropped = entries.flatMap((entry) => log.push(entry));
  assert.deepEqual(dropped.map((e) => e.id), [0, 1]);
  assert.equal(log.size, 10);
  assert.deepEqual(log.newestFirst().slice(0, 3).map((e) => e.id), [11, 10, 9]);
  assert.deepEqual(log.newestFirst("odd").map((e) => e.id), [11, 9, 7, 5, 3]);
  assert.deepEqual(log.setLimit(3).map((e) => e.id), []);
  assert.equal(log.limit, KEEP_MIN, "a limit below the minimum is raised");
  assert.equal(clampKeep("100000"), KEEP_MAX);
  assert.equal(clampKeep("abc"), 500);
  assert.equal(log.clear().length, 10);
  assert.equal(log.size, 0);
});

test("advertised addresses become origins; unspecified hosts are the page's", () => {
  assert.equal(originOf("127.0.0.1:6002", page), "http://127.0.0.1:6002");
  assert.equal(originOf("0.0.0.0:6003", page), "http://127.0.0.1:6003");
  assert.equal(originOf("[::1]:6001", page), "http://[::1]:6001");
  assert.equal(originOf("broker-2.local:80", page), "http://broker-2.local:80");
  assert.equal(originOf("no-port", page), null);
  assert.equal(originOf("http://a:1", page), null);
});

test("failover walks to the next node ids, then wraps around", () => {
  const nodes = new NodeDirectory(page);
  nodes.learnCluster({
    nodes: [1, 2, 3].map((id) => ({ node_id: id, addresses: { native: `127.0.0.1:940${id}`, http: `127.0.0.1:600${id}` } })),
  });
  nodes.learnDemo({ nodes: [{ node_id: 4, running: true, http: "127.0.0.1:6004" }] });
  const ids = (origin) => nodes.candidates(origin).map(([id]) => id);
  assert.deepEqual(ids("http://127.0.0.1:6002"), [3, 4, 1]);
  assert.deepEqual(ids("http://127.0.0.1:6004"), [1, 2, 3]);
  assert.deepEqual(ids("http://localhost:6001"), [1, 2, 3, 4], "an unknown origin tries every node");
  assert.equal(nodes.nodeAt("http://127.0.0.1:6003"), 3);
});

test("chart scales, padding and point lists", () => {
  assert.deepEqual(extent([3, NaN, -1, 7]), { min: -1, max: 7 });
  assert.equal(extent([NaN]), null);
  const x = linearScale(0, 10, 0, 100);
  assert.equal(x(2.5), 25);
  assert.equal(linearScale(5, 5, 0, 100)(5), 50, "a flat domain maps to the middle");
  assert.deepEqual(pad({ min: 10, max: 10 }), { min: 9, max: 11 });
  assert.equal(pointList([{ x: 0, y: 1 }, { x: 10, y: 2 }], x, (v) => v * 3.333), "0,3.3 100,6.7");
  assert.deepEqual(keepLast([1, 2, 3, 4], 2), [3, 4]);
});

test("records per second come from sampled high watermarks", () => {
  const samples = [
    { atMs: 0, total: 100 },
    { atMs: 2000, total: 300 },
    { atMs: 4000, total: 300 },
    { atMs: 6000, total: 10 },
  ];
  assert.deepEqual(ratesOf(samples), [100, 0, 0]);
  assert.equal(topicTotal({ partitions: [{ high_watermark: 5 }, { high_watermark: 7 }] }), 12);
});

const air = (station, aqi, ts) => ({
  station,
  district: station.split("-")[0],
  kind: "air",
  ts_ms: ts,
  values: { pm25: 1, aqi },
  units: { aqi: "index" },
  labels: {},
});

test("stations are coloured by AQI and congestion", () => {
  assert.equal(stationLook(air("north-air-1", 42, 0)).className, "level-good");
  assert.equal(stationLook(air("north-air-1", 151, 0)).className, "level-unhealthy");
  assert.equal(stationLook(air("north-air-1", 400, 0)).className, "level-hazardous");
  const traffic = { station: "x", district: "x", kind: "traffic", values: { congestion: 0.9 }, labels: { level: "jammed", incident: "collision" } };
  assert.deepEqual(stationLook(traffic), { className: "level-unhealthy", value: "90% congested", label: "jammed, collision" });
  assert.equal(defaultMetric("traffic", { congestion: 1, vehicles_per_min: 2 }), "congestion");
  assert.equal(defaultMetric("weather", { wind_speed_ms: 1 }), "wind_speed_ms");
});

test("districts and stations come in name order, numbers as numbers", () => {
  const grouped = groupByDistrict([air("south-air-10", 1, 0), air("north-air-2", 1, 0), air("south-air-9", 1, 0)]);
  assert.deepEqual(grouped.map((d) => d.district), ["north", "south"]);
  assert.deepEqual(grouped[1].stations.map((s) => s.station), ["south-air-9", "south-air-10"]);
  assert.equal(readingKey(air("north-air-2", 1, 0)), "city/north/air/north-air-2");
  assert.equal(hasCityTopics(["air", "city.alerts"]), true);
  assert.equal(hasCityTopics(["air", "cityscape"]), false);
});

test("an older reading never replaces a newer one", () => {
  const stations = new Map();
  assert.equal(mergeReading(stations, air("north-air-1", 10, 2000)), true);
  assert.equal(mergeReading(stations, air("north-air-1", 99, 1000)), false);
  assert.equal(stations.get("north-air-1").values.aqi, 10);
});

test("the forecast band starts at the window's end and mean", () => {
  const analytics = {
    window_start_ms: 60000,
    window_ms: 60000,
    mean: 40,
    forecast: { horizon_ms: 300000, value: 45, low: 35, high: 55 },
  };
  assert.deepEqual(forecastBand(analytics), { startMs: 120000, startValue: 40, atMs: 420000, value: 45, low: 35, high: 55 });
  assert.equal(forecastBand({ window_start_ms: 0 }), null);
});

test("the publish form becomes the API's record object", () => {
  const fields = {
    key: "station-1",
    format: "json",
    value: '{"pm25": 12.5}',
    headers: [["unit", "ug/m3"], ["", ""], ["priority", "low"]],
    priority: "high",
    partition: "2",
  };
  assert.deepEqual(buildRecord(fields), {
    record: { value: { pm25: 12.5 }, key: "station-1", headers: { unit: "ug/m3", priority: "high" }, partition: 2 },
  });
  assert.deepEqual(buildRecord({ format: "text", value: "raw", headers: [], priority: "", partition: "" }), { record: { value: "raw" } });
  assert.equal(buildRecord({ format: "json", value: "{oops" }).error.field, "value");
  assert.equal(buildRecord({ format: "json", value: "" }).error.field, "value");
  assert.equal(buildRecord({ format: "text", value: "", partition: "-1" }).error.field, "partition");
  assert.equal(buildRecord({ format: "text", value: "", headers: [["", "x"]] }).error.field, "headers");
  assert.equal(describeWritten("air", { records: [{ partition: 1, offset: 42 }] }), "Written to air: partition 1, offset 42.");
  assert.equal(describeWritten("air", { records: [{ partition: 0, offset: null }] }), "Written to air: partition 0, offset not reported.");
});
