// The city data as the dashboard needs it (docs/city-data.md): station
// colours by AQI and congestion, districts and their stations in order,
// keys, and the forecast band of an analytics record. Pure: no DOM.

export const INPUT_KINDS = ["air", "traffic", "weather", "buildings"];
export const ALERTS_TOPIC = "city.alerts";
export const ANALYTICS_TOPIC = "city.analytics";
export const LATEST_TOPIC = "city.latest";

/** Whether a topic list (names) has any city topic. */
export function hasCityTopics(names) {
  return names.some((name) => name.startsWith("city."));
}

/** The input topic of a kind of station ("city.air"). */
export function topicOfKind(kind) {
  return `city.${kind}`;
}

/** The key of a station's readings: "city/<district>/<kind>/<station>". */
export function readingKey(reading) {
  return `city/${reading.district}/${reading.kind}/${reading.station}`;
}

/** The key of a station metric's analytics: "<station>/<metric>". */
export function analyticsKey(station, metric) {
  return `${station}/${metric}`;
}

/** US EPA AQI categories: upper bound, CSS class, name. */
const AQI_LEVELS = [
  [50, "level-good", "Good"],
  [100, "level-moderate", "Moderate"],
  [150, "level-usg", "Unhealthy for Sensitive Groups"],
  [200, "level-unhealthy", "Unhealthy"],
  [300, "level-very", "Very Unhealthy"],
  [Infinity, "level-hazardous", "Hazardous"],
];

/** Congestion 0..1 to the traffic levels, on the AQI colours. */
const CONGESTION_LEVELS = [
  [0.3, "level-good", "free"],
  [0.6, "level-moderate", "moderate"],
  [0.85, "level-usg", "heavy"],
  [Infinity, "level-unhealthy", "jammed"],
];

function levelOf(levels, value) {
  const [, className, name] = levels.find(([upper]) => value <= upper);
  return { className, name };
}

/**
 * How a station's tile looks: {className, value (short text), label
 * (the category in words)}.
 */
export function stationLook(reading) {
  const values = reading.values ?? {};
  if (reading.kind === "air" && Number.isFinite(values.aqi)) {
    const level = levelOf(AQI_LEVELS, values.aqi);
    return { className: level.className, value: `AQI ${Math.round(values.aqi)}`, label: reading.labels?.category ?? level.name };
  }
  if (reading.kind === "traffic" && Number.isFinite(values.congestion)) {
    const level = levelOf(CONGESTION_LEVELS, values.congestion);
    const label = reading.labels?.incident ? `${reading.labels?.level ?? level.name}, ${reading.labels.incident}` : reading.labels?.level ?? level.name;
    return { className: level.className, value: `${Math.round(values.congestion * 100)}% congested`, label };
  }
  if (Number.isFinite(values.temperature_c)) {
    return { className: "level-neutral", value: `${values.temperature_c.toFixed(1)} °C`, label: reading.labels?.description ?? reading.kind };
  }
  return { className: "level-neutral", value: reading.kind ?? "", label: "" };
}

/** The metric charted first for a kind. */
export function defaultMetric(kind, values) {
  const preferred = { air: "aqi", traffic: "congestion", weather: "temperature_c", buildings: "temperature_c" }[kind];
  const names = Object.keys(values ?? {});
  return names.includes(preferred) ? preferred : names[0] ?? "";
}

/** Compares station ids with their numbers as numbers ("x-2" before "x-10"). */
export function naturalCompare(a, b) {
  return a.localeCompare(b, "en", { numeric: true });
}

/** Districts in name order, each with its readings in station order. */
export function groupByDistrict(readings) {
  const districts = new Map();
  for (const reading of readings) {
    if (!districts.has(reading.district)) districts.set(reading.district, []);
    districts.get(reading.district).push(reading);
  }
  return [...districts.keys()].sort(naturalCompare).map((district) => ({
    district,
    stations: districts.get(district).sort((a, b) => naturalCompare(a.station, b.station)),
  }));
}

/** Whether a value is a reading (the fields the dashboard reads). */
export function isReading(value) {
  return (
    value !== null &&
    typeof value === "object" &&
    typeof value.station === "string" &&
    typeof value.district === "string" &&
    typeof value.kind === "string"
  );
}

/** Keeps `reading` in `stations` (Map station -> reading) unless an older one. */
export function mergeReading(stations, reading) {
  const known = stations.get(reading.station);
  if (known && Number(known.ts_ms) > Number(reading.ts_ms)) return false;
  stations.set(reading.station, reading);
  return true;
}

/**
 * The forecast of an analytics record as a band: from the window's end
 * at its mean, widening to [low, high] at the forecast time. Null when
 * the record has no forecast.
 */
export function forecastBand(analytics) {
  const forecast = analytics?.forecast;
  if (!forecast || !Number.isFinite(forecast.value)) return null;
  const startMs = Number(analytics.window_start_ms) + Number(analytics.window_ms ?? 0);
  const atMs = startMs + Number(forecast.horizon_ms ?? 0);
  if (!Number.isFinite(startMs) || !Number.isFinite(atMs)) return null;
  return {
    startMs,
    startValue: Number.isFinite(analytics.mean) ? analytics.mean : forecast.value,
    atMs,
    value: forecast.value,
    low: Number.isFinite(forecast.low) ? forecast.low : forecast.value,
    high: Number.isFinite(forecast.high) ? forecast.high : forecast.value,
  };
}

/** Parses a record's value as JSON; null if it is not. */
export function parseValue(record) {
  try {
    return JSON.parse(record.value);
  } catch {
    return null;
  }
}
