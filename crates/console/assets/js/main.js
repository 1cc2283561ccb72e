// The console's entry: hash routes (#/stream, #/publish, #/consume,
// #/cluster, #/city) show one page at a time; the "talking to node N"
// label; a background look at the cluster every 10 s so the page knows
// where to go if its node stops. A page is set up once and told when it is
// shown or hidden (also when the tab is hidden), so it holds connections
// and timers only while someone looks at it.

import * as api from "./api.js";
import { byId } from "./dom.js";
import { setupStream } from "./pages/stream.js";
import { setupPublish } from "./pages/publish.js";
import { setupConsume } from "./pages/consume.js";
import { setupCluster } from "./pages/cluster.js";
import { setupCity } from "./pages/city.js";

const DEFAULT_ROUTE = "stream";
const CLUSTER_LOOK_MS = 10000;

const pages = new Map([
  ["stream", setupStream()],
  ["publish", setupPublish()],
  ["consume", setupConsume()],
  ["cluster", setupCluster()],
  ["city", setupCity()],
]);
let current = null;

/** The page a hash names; null for an in-page anchor such as #main. */
function routeOf(hash) {
  if (hash && !hash.startsWith("#/")) return null;
  const name = hash.slice(2).split(/[/?]/)[0];
  return pages.has(name) ? name : DEFAULT_ROUTE;
}

function showRoute({ focus }) {
  const next = routeOf(location.hash) ?? current ?? DEFAULT_ROUTE;
  if (next === current) return;
  if (current) {
    pages.get(current).hide();
    byId(`page-${current}`).hidden = true;
  }
  current = next;
  byId(`page-${current}`).hidden = false;
  for (const link of document.querySelectorAll(".top nav a")) {
    if (link.getAttribute("href") === `#/${current}`) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  if (!document.hidden) pages.get(current).show();
  if (focus) byId(`${current}-title`).focus();
}

function showNode(node) {
  const label = document.querySelector('[data-testid="talking-to"]');
  const name = node.nodeId === null ? "this page's node" : `node ${node.nodeId}`;
  const host = node.origin.replace(/^[a-z]+:\/\//, "");
  label.textContent = node.moved
    ? `talking to ${name} (${host}): the page's own node stopped answering`
    : `talking to ${name} (${host})`;
  label.dataset.nodeId = node.nodeId === null ? "" : String(node.nodeId);
  label.classList.toggle("moved", node.moved);
}

async function lookAtCluster() {
  if (document.hidden) return;
  try {
    await api.cluster();
  } catch {
    // Shown by the pages that need the cluster; here only addresses are learnt.
  }
}

window.addEventListener("hashchange", () => showRoute({ focus: true }));
document.addEventListener("visibilitychange", () => {
  if (!current) return;
  if (document.hidden) pages.get(current).hide();
  else pages.get(current).show();
});
api.onNodeChange(showNode);
showNode(api.currentNode());
showRoute({ focus: false });
lookAtCluster();
setInterval(lookAtCluster, CLUSTER_LOOK_MS);
