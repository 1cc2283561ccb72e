// The arithmetic of the console's small charts: scales, point lists,
// records-per-second from sampled high watermarks. Pure: no DOM.

/** Smallest and largest finite value; null for none. */
export function extent(values) {
  let min = Infinity;
  let max = -Infinity;
  for (const value of values) {
    if (!Number.isFinite(value)) continue;
    if (value < min) min = value;
    if (value > max) max = value;
  }
  return min === Infinity ? null : { min, max };
}

/**
 * A linear map from [d0, d1] to [r0, r1]. A domain of one value maps to
 * the middle of the range (a flat line, not a division by zero).
 */
export function linearScale(d0, d1, r0, r1) {
  const span = d1 - d0;
  if (!Number.isFinite(span) || span === 0) {
    const middle = (r0 + r1) / 2;
    return () => middle;
  }
  return (value) => r0 + ((value - d0) / span) * (r1 - r0);
}

/** Widens [min, max] by `fraction` of its span on each side (a flat span by 1). */
export function pad({ min, max }, fraction = 0.08) {
  const span = max - min;
  const margin = span === 0 ? Math.max(1, Math.abs(max) * 0.1) : span * fraction;
  return { min: min - margin, max: max + margin };
}

/** SVG "x,y x,y ..." of `points` ({x, y}) through the scales, rounded to 0.1. */
export function pointList(points, x, y) {
  return points.map((p) => `${round(x(p.x))},${round(y(p.y))}`).join(" ");
}

export function round(value) {
  return Math.round(value * 10) / 10;
}

/**
 * Records per second between successive samples ({atMs, total}). A total
 * that went down (a topic deleted and created again) counts as 0.
 */
export function ratesOf(samples) {
  const rates = [];
  for (let i = 1; i < samples.length; i += 1) {
    const seconds = (samples[i].atMs - samples[i - 1].atMs) / 1000;
    const added = samples[i].total - samples[i - 1].total;
    rates.push(seconds > 0 && added > 0 ? added / seconds : 0);
  }
  return rates;
}

/** Sum of a topic's partitions' high watermarks: every record it ever took. */
export function topicTotal(topic) {
  return (topic.partitions ?? []).reduce((sum, p) => sum + (p.high_watermark ?? 0), 0);
}

/** Keeps the last `max` items of an array in place. */
export function keepLast(items, max) {
  if (items.length > max) items.splice(0, items.length - max);
  return items;
}
