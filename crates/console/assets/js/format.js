// Formatting numbers, times and records as text. Pure: no DOM, no
// network, so node's test runner can import it.

/** Local wall time with milliseconds, e.g. "14:03:07.215". */
export function formatTime(ms) {
  if (!Number.isFinite(ms)) return "";
  const date = new Date(ms);
  const pad = (n, width = 2) => String(n).padStart(width, "0");
  return `${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}.${pad(date.getMilliseconds(), 3)}`;
}

/** Local wall time to the second, e.g. "14:03:07". */
export function formatClock(ms) {
  return formatTime(ms).slice(0, 8);
}

/** A count with a k/M suffix past 10,000 ("12.5k"). */
export function formatCount(n) {
  if (!Number.isFinite(n)) return "–";
  const abs = Math.abs(n);
  if (abs >= 1e7) return `${(n / 1e6).toFixed(1)}M`;
  if (abs >= 1e4) return `${(n / 1e3).toFixed(1)}k`;
  if (Number.isInteger(n)) return String(n);
  return n.toFixed(abs >= 100 ? 0 : abs >= 10 ? 1 : 2);
}

/** Bytes with a binary unit ("1.5 KiB"). */
export function formatBytes(n) {
  if (!Number.isFinite(n)) return "–";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let value = n;
  let unit = 0;
  while (Math.abs(value) >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return unit === 0 ? `${value} B` : `${value.toFixed(1)} ${units[unit]}`;
}

/** A number for a chart label: at most 3 significant decimals. */
export function formatNumber(n) {
  if (!Number.isFinite(n)) return "–";
  const abs = Math.abs(n);
  if (abs >= 1000 || Number.isInteger(n)) return String(Math.round(n));
  if (abs >= 100) return n.toFixed(0);
  if (abs >= 10) return n.toFixed(1);
  return n.toFixed(2);
}

/** A record's value for display: JSON compacted, anything else as is. */
export function displayValue(record) {
  if (record.value_encoding === "base64") return `(base64) ${record.value}`;
  const text = record.value ?? "";
  const first = text.trimStart()[0];
  if (first !== "{" && first !== "[") return text;
  try {
    return JSON.stringify(JSON.parse(text));
  } catch {
    return text;
  }
}

/** Headers as "name=value name=value" (empty when none). */
export function displayHeaders(headers) {
  return Object.entries(headers ?? {})
    .map(([name, value]) => `${name}=${value}`)
    .join(" ");
}

/** The text a record is filtered by: everything shown, lower case. */
export function searchText(record) {
  return [
    record.topic,
    `${record.partition}:${record.offset}`,
    record.key ?? "",
    record.value ?? "",
    displayHeaders(record.headers),
  ]
    .join(" ")
    .toLowerCase();
}
