// Every call to the HTTP API goes through here: relative URLs while the
// node that served the page answers; when it stops answering, the page
// moves to another node's HTTP address (from the last cluster or demo
// answer) and tells its listeners, so live streams reopen there with their
// last event id; once its own node is ready again, it moves back the same
// way. Errors become ApiError with the API's {code, message}.
//
// Moving between nodes needs the brokers to allow the page's origin
// (`--http-cors-origin`): another node is another origin.

import { NodeDirectory } from "./nodes.js";

/** A request without an answer within this time failed. */
const REQUEST_TIMEOUT_MS = 15000;
/** A node that does not answer /healthz within this time is skipped. */
const PROBE_TIMEOUT_MS = 2000;
/**
 * While the page talks to another node, how often it asks whether its own
 * node (the one that served it) is ready again; then it moves back.
 */
const HOME_CHECK_MS = 5000;

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.name = "ApiError";
    /** HTTP status; 0 when no node answered. */
    this.status = status;
    this.code = code;
  }
}

const directory = new NodeDirectory({ protocol: location.protocol, hostname: location.hostname });
const talking = { origin: location.origin, nodeId: null };
const listeners = new Set();
let finding = null;
let homeCheck = null;

/** The URL of an API path on the node the page talks to. */
export function url(path) {
  return talking.origin === location.origin ? path : talking.origin + path;
}

/** The node the page talks to: {origin, nodeId (null: not known yet), moved}. */
export function currentNode() {
  return { origin: talking.origin, nodeId: talking.nodeId, moved: talking.origin !== location.origin };
}

/** Calls `listener(currentNode())` whenever that node changes; returns the unsubscribe. */
export function onNodeChange(listener) {
  listeners.add(listener);
  return () => listeners.delete(listener);
}

function notify() {
  const node = currentNode();
  for (const listener of listeners) listener(node);
}

export function get(path) {
  return request("GET", path);
}

export function post(path, json) {
  return request("POST", path, { json });
}

/**
 * One API call. GETs are retried once on the next node when the current
 * one does not answer; other methods are not (the first may have been
 * applied), the caller sees the error and the page is on the new node.
 */
export async function request(method, path, { json } = {}) {
  const init = () => {
    const options = { method, signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS), cache: "no-store" };
    if (json !== undefined) {
      options.headers = { "content-type": "application/json" };
      options.body = JSON.stringify(json);
    }
    return options;
  };
  let response;
  try {
    response = await fetch(url(path), init());
  } catch (error) {
    const before = describeNode();
    const found = await findNode();
    if (found === null || method !== "GET") throw unreachable(before, found, error);
    try {
      response = await fetch(url(path), init());
    } catch (retryError) {
      throw unreachable(describeNode(), null, retryError);
    }
  }
  return parse(response);
}

async function parse(response) {
  if (response.status === 204) return null;
  const text = await response.text();
  let body = null;
  try {
    body = text ? JSON.parse(text) : null;
  } catch {
    body = null;
  }
  if (response.ok) return body ?? text;
  const error = body?.error;
  throw new ApiError(
    response.status,
    error?.code ?? `HTTP_${response.status}`,
    error?.message ?? (text.trim() || response.statusText || `HTTP ${response.status}`),
  );
}

function unreachable(node, found, cause) {
  const message =
    found === "moved"
      ? `no answer from ${node}; now talking to ${describeNode()}: try again`
      : `no answer from ${node} (${cause?.name === "TimeoutError" ? "timed out" : "unreachable"})`;
  return new ApiError(0, "UNREACHABLE", message);
}

/** "node 2 (127.0.0.1:6002)" or "this page's node". */
export function describeNode() {
  const host = talking.origin.replace(/^[a-z]+:\/\//, "");
  return talking.nodeId === null ? `this page's node (${host})` : `node ${talking.nodeId} (${host})`;
}

/**
 * After a failure: "same" if the current node answers /healthz (a
 * passing failure), "moved" after switching to another node that does,
 * null if none answers. Concurrent callers share one search.
 */
export function findNode() {
  finding ??= search().finally(() => {
    finding = null;
  });
  return finding;
}

async function search() {
  if (await answers(talking.origin)) return "same";
  for (const [nodeId, origin] of directory.candidates(talking.origin)) {
    if (await answers(origin)) {
      talking.origin = origin;
      talking.nodeId = nodeId;
      watchHome();
      notify();
      return "moved";
    }
  }
  return null;
}

/**
 * After a move: every HOME_CHECK_MS, whether the page's own node is ready
 * (/readyz: it answers and knows a metadata leader); once it is, the page
 * talks to it again and its listeners reopen their streams there.
 */
function watchHome() {
  if (homeCheck !== null) return;
  homeCheck = setInterval(async () => {
    if (talking.origin === location.origin) {
      clearInterval(homeCheck);
      homeCheck = null;
      return;
    }
    if (finding || !(await answers(location.origin, "/readyz"))) return;
    if (talking.origin === location.origin) return;
    talking.origin = location.origin;
    talking.nodeId = directory.nodeAt(location.origin);
    clearInterval(homeCheck);
    homeCheck = null;
    notify();
  }, HOME_CHECK_MS);
}

async function answers(origin, path = "/healthz") {
  try {
    const response = await fetch(`${origin}${path}`, {
      signal: AbortSignal.timeout(PROBE_TIMEOUT_MS),
      cache: "no-store",
    });
    return response.ok;
  } catch {
    return false;
  }
}

/** GET /api/cluster, learning every node's HTTP address and who answered. */
export async function cluster() {
  const view = await get("/api/cluster");
  directory.learnCluster(view);
  // An answer that raced a move to another node does not name the new one.
  const answeredHere = directory.origins.get(view.node_id) === talking.origin;
  if (talking.nodeId !== view.node_id && (answeredHere || talking.nodeId === null)) {
    talking.nodeId = view.node_id;
    notify();
  }
  return view;
}

/** Learns the nodes' HTTP addresses from an /api/demo answer. */
export function learnDemo(demo) {
  directory.learnDemo(demo);
}

/** An error as one line for the page. */
export function errorText(error) {
  if (error instanceof ApiError) return error.status ? `${error.message} (${error.code})` : error.message;
  return String(error?.message ?? error);
}

/** The API path of a topic (its name escaped). */
export function topicPath(topic, rest = "") {
  return `/api/topics/${encodeURIComponent(topic)}${rest}`;
}
