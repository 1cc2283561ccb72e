// Small inline SVG charts drawn by hand: a sparkline (records per second)
// and a line chart with a forecast band (city stations). Scales and point
// lists come from chart-math.js; this module only builds the elements.

import { extent, linearScale, pad, pointList, round } from "./chart-math.js";
import { formatClock, formatNumber } from "./format.js";

const SVG_NS = "http://www.w3.org/2000/svg";

/** An SVG element with attributes (values as text). */
export function svgEl(tag, attributes = {}, ...children) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (/^on/i.test(name)) throw new Error(`refusing inline handler attribute ${name}`);
    node.setAttribute(name, String(value));
  }
  node.append(...children);
  return node;
}

function titled(svg, label) {
  svg.setAttribute("role", "img");
  svg.setAttribute("aria-label", label);
  svg.prepend(svgEl("title", {}, label));
  return svg;
}

/** A sparkline of `values` (oldest first), filled below the line. */
export function sparkline(values, { label, width = 200, height = 36 } = {}) {
  const svg = svgEl("svg", {
    class: "sparkline",
    viewBox: `0 0 ${width} ${height}`,
    preserveAspectRatio: "none",
    "data-testid": "cluster-sparkline",
  });
  if (values.length >= 2) {
    const range = extent(values);
    const x = linearScale(0, values.length - 1, 0, width);
    const y = linearScale(0, Math.max(range.max, 1), height - 1, 1);
    const points = values.map((value, index) => ({ x: index, y: value }));
    const line = pointList(points, x, y);
    svg.append(
      svgEl("polygon", { class: "area", points: `0,${height} ${line} ${width},${height}` }),
      svgEl("polyline", { points: line }),
    );
  }
  return titled(svg, label ?? "records per second");
}

const MARGINS = { left: 52, right: 14, top: 12, bottom: 28 };

/**
 * A line chart of `points` ({x: ms, y}), with an optional forecast band
 * (see city-model.js forecastBand) drawn past the last point. `width` is
 * the width it is shown at, so its text is not scaled.
 */
export function lineChart({ points, band, label, unit = "", width = 640, height = 260 }) {
  const frame = { ...MARGINS, width: Math.max(240, Math.round(width)), height };
  const svg = svgEl("svg", { viewBox: `0 0 ${frame.width} ${frame.height}`, "data-testid": "city-chart-svg" });
  const xs = points.map((p) => p.x);
  const ys = points.map((p) => p.y);
  if (band) {
    xs.push(band.startMs, band.atMs);
    ys.push(band.low, band.high, band.startValue);
  }
  const xRange = extent(xs);
  const yRange = extent(ys);
  if (!xRange || !yRange) return titled(svg, `${label}: no readings yet`);
  const padded = pad(yRange);
  const x = linearScale(xRange.min, xRange.max, frame.left, frame.width - frame.right);
  const y = linearScale(padded.min, padded.max, frame.height - frame.bottom, frame.top);
  svg.append(...axes(frame, xRange, padded, unit));
  if (band) svg.append(...forecast(band, x, y));
  if (points.length > 0) {
    svg.append(svgEl("polyline", { class: "line", points: pointList(points, x, y) }));
    const last = points[points.length - 1];
    svg.append(svgEl("circle", { class: "dot", cx: round(x(last.x)), cy: round(y(last.y)), r: 3.5 }));
  }
  return titled(svg, label);
}

function axes(chart, xRange, yRange, unit) {
  const { width, height, left, right, top, bottom } = chart;
  const baseline = height - bottom;
  const y = linearScale(yRange.min, yRange.max, baseline, top);
  const nodes = [
    svgEl("line", { class: "axis", x1: left, y1: top, x2: left, y2: baseline }),
    svgEl("line", { class: "axis", x1: left, y1: baseline, x2: width - right, y2: baseline }),
  ];
  for (const value of [yRange.min, (yRange.min + yRange.max) / 2, yRange.max]) {
    const at = round(y(value));
    nodes.push(svgEl("text", { class: "tick", x: left - 6, y: at + 4, "text-anchor": "end" }, formatNumber(value)));
  }
  if (unit) nodes.push(svgEl("text", { class: "tick", x: left + 4, y: top + 10 }, unit));
  nodes.push(
    svgEl("text", { class: "tick", x: left, y: height - 8 }, formatClock(xRange.min)),
    svgEl("text", { class: "tick", x: width - right, y: height - 8, "text-anchor": "end" }, formatClock(xRange.max)),
  );
  return nodes;
}

function forecast(band, x, y) {
  const start = `${round(x(band.startMs))},${round(y(band.startValue))}`;
  const atX = round(x(band.atMs));
  return [
    svgEl("polygon", {
      class: "band",
      points: `${start} ${atX},${round(y(band.high))} ${atX},${round(y(band.low))}`,
      "data-testid": "city-chart-band",
    }),
    svgEl("polyline", { class: "forecast-line", points: `${start} ${atX},${round(y(band.value))}` }),
    svgEl("circle", { class: "forecast-point", cx: atX, cy: round(y(band.value)), r: 4 }),
  ];
}
