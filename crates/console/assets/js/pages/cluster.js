// Cluster: GET /api/cluster every 2 s (nodes with role, health and
// addresses; the metadata leader and term; every partition's leader,
// replicas and lag), records per second from GET /api/topics, and the demo
// controls when GET /api/demo answers (Stop/Start per node; hidden on 404).
// Node rows are updated in place, so a focused button keeps its focus.

import * as api from "../api.js";
import { byId, el, setStatus } from "../dom.js";
import { formatBytes } from "../format.js";
import { RatesView } from "./cluster-rates.js";

const POLL_MS = 2000;

export function setupCluster() {
  const page = new ClusterPage();
  return { show: () => page.show(), hide: () => page.hide() };
}

class ClusterPage {
  constructor() {
    this.summary = byId("cluster-summary");
    this.status = byId("cluster-status");
    this.nodeRows = byId("cluster-node-rows");
    this.partitionRows = byId("cluster-partition-rows");
    this.rates = new RatesView(byId("cluster-rates"));
    /** node id -> the row's cells and buttons */
    this.rows = new Map();
    /** "unknown" until GET /api/demo answered, then "present", "empty" (asked again) or "absent" (404: not asked again). */
    this.demo = { state: "unknown", nodes: [] };
    this.timer = null;
    this.visible = false;
    this.polling = false;
    this.failing = false;
    this.lastCluster = null;
  }

  show() {
    if (this.visible) return;
    this.visible = true;
    this.poll();
    this.timer = setInterval(() => this.poll(), POLL_MS);
  }

  hide() {
    this.visible = false;
    clearInterval(this.timer);
    this.timer = null;
  }

  async poll() {
    if (this.polling) return;
    this.polling = true;
    try {
      const [cluster, topics] = await Promise.allSettled([api.cluster(), api.get("/api/topics"), this.loadDemo()]);
      if (cluster.status === "fulfilled") {
        this.lastCluster = cluster.value;
        this.showSummary(cluster.value);
        this.showPartitions(cluster.value.partitions ?? []);
        if (this.failing) setStatus(this.status, "");
        this.failing = false;
      } else {
        setStatus(this.status, `Could not get the cluster: ${api.errorText(cluster.reason)}`, "error");
        this.failing = true;
      }
      this.showNodes();
      if (topics.status === "fulfilled") this.rates.sample(topics.value.topics ?? [], Date.now());
    } finally {
      this.polling = false;
    }
  }

  async loadDemo() {
    if (this.demo.state === "absent") return;
    try {
      const demo = await api.get("/api/demo");
      const nodes = Array.isArray(demo?.nodes) ? demo.nodes : [];
      // 200 with no node (or 204) also means "no demo": no console line, unlike a 404.
      this.demo = { state: nodes.length > 0 ? "present" : "empty", nodes };
      api.learnDemo(demo);
    } catch (error) {
      if (error instanceof api.ApiError && error.status === 404) this.demo = { state: "absent", nodes: [] };
    }
  }

  showSummary(cluster) {
    const alive = (cluster.nodes ?? []).filter((n) => n.state === "alive").length;
    const leader = cluster.metadata_leader ?? null;
    const leaderText = leader === null ? "none known" : `node ${leader}`;
    this.summary.replaceChildren(
      `Cluster ${cluster.cluster_id}: metadata leader `,
      el("strong", { testid: "cluster-leader", dataset: { nodeId: leader ?? "" }, text: leaderText }),
      ` (term ${cluster.metadata_term}); ${alive} of ${(cluster.nodes ?? []).length} nodes alive; answered by node ${cluster.node_id}.`,
    );
  }

  showNodes() {
    const cluster = this.lastCluster;
    const nodes = new Map();
    for (const node of cluster?.nodes ?? []) nodes.set(node.node_id, { node, demo: null });
    for (const demo of this.demo.nodes) {
      const entry = nodes.get(demo.node_id) ?? { node: null, demo: null };
      entry.demo = demo;
      nodes.set(demo.node_id, entry);
    }
    const ids = [...nodes.keys()].sort((a, b) => a - b);
    for (const id of ids) this.updateRow(id, nodes.get(id), cluster);
    for (const id of [...this.rows.keys()]) {
      if (!nodes.has(id)) {
        this.rows.get(id).row.remove();
        this.rows.delete(id);
      }
    }
    const ordered = ids.map((id) => this.rows.get(id).row);
    if (ordered.some((row, index) => this.nodeRows.children[index] !== row)) this.nodeRows.replaceChildren(...ordered);
    const demoShown = this.demo.state === "present";
    for (const header of document.querySelectorAll("#page-cluster .demo-column")) header.hidden = !demoShown;
  }

  updateRow(id, { node, demo }, cluster) {
    const cells = this.rows.get(id) ?? this.addRow(id);
    const talking = api.currentNode().nodeId === id;
    cells.name.textContent = talking ? `${id} (talking to)` : String(id);
    cells.row.classList.toggle("this-node", talking);
    const leader = cluster?.metadata_leader === id;
    cells.role.textContent = leader ? "metadata leader" : node ? "follower" : "–";
    cells.row.dataset.role = leader ? "leader" : "follower";
    const health = demo && !demo.running ? "stopped" : node?.state ?? "unknown";
    cells.health.textContent = health;
    cells.health.setAttribute("class", `health ${health}`);
    cells.row.dataset.health = health;
    const addresses = Object.entries(node?.addresses ?? {}).map(([name, address]) => `${name} ${address}`);
    if (demo?.http && !node?.addresses?.http) addresses.push(`http ${demo.http}`);
    cells.addresses.textContent = addresses.join(", ") || "–";
    cells.led.textContent = node ? String(node.partitions_led) : "–";
    cells.bytesIn.textContent = node ? `${formatBytes(node.bytes_in_per_s)}/s` : "–";
    cells.bytesOut.textContent = node ? `${formatBytes(node.bytes_out_per_s)}/s` : "–";
    cells.cpu.textContent = node ? `${(node.cpu_permille / 10).toFixed(1)}%` : "–";
    cells.demoCell.hidden = this.demo.state !== "present";
    if (!cells.busy) {
      cells.stop.disabled = !demo || !demo.running;
      cells.start.disabled = !demo || demo.running;
    }
  }

  addRow(id) {
    const cell = (testid) => el("td", { testid });
    const cells = {
      name: cell("cluster-node-id"),
      role: cell("cluster-node-role"),
      health: cell("cluster-node-health"),
      addresses: cell("cluster-node-addresses"),
      led: cell(),
      bytesIn: cell(),
      bytesOut: cell(),
      cpu: cell(),
      busy: false,
    };
    cells.addresses.setAttribute("class", "addresses");
    const button = (testid, text, action, extra) =>
      el("button", {
        type: "button",
        testid,
        dataset: { nodeId: String(id) },
        "aria-label": `${text} node ${id}`,
        text,
        class: extra,
        on: { click: () => this.demoAction(id, action, cells) },
      });
    cells.stop = button("node-stop", "Stop (kill)", "stop", "danger");
    cells.start = button("node-start", "Start", "start");
    cells.demoCell = el("td", {}, el("div", { class: "demo-buttons" }, cells.stop, cells.start));
    cells.row = el(
      "tr",
      { testid: "cluster-node", dataset: { nodeId: String(id) } },
      cells.name, cells.role, cells.health, cells.addresses, cells.led, cells.bytesIn, cells.bytesOut, cells.cpu, cells.demoCell,
    );
    this.rows.set(id, cells);
    return cells;
  }

  async demoAction(id, action, cells) {
    cells.busy = true;
    cells.stop.disabled = true;
    cells.start.disabled = true;
    setStatus(this.status, `${action === "stop" ? "Stopping" : "Starting"} node ${id}…`);
    try {
      await api.post(`/api/demo/nodes/${id}/${action}`);
      setStatus(this.status, `Node ${id} ${action === "stop" ? "stopped" : "started"}.`, "ok");
    } catch (error) {
      setStatus(this.status, `Could not ${action} node ${id}: ${api.errorText(error)}`, "error");
    } finally {
      cells.busy = false;
    }
    await this.poll();
  }

  showPartitions(partitions) {
    const sorted = [...partitions].sort((a, b) => a.topic.localeCompare(b.topic) || a.partition - b.partition);
    this.partitionRows.replaceChildren(...sorted.map(partitionRow));
  }
}

function partitionRow(p) {
  return el(
    "tr",
    { testid: "cluster-partition", dataset: { topic: p.topic, partition: String(p.partition) } },
    el("td", { text: p.topic }),
    el("td", { text: p.partition }),
    el("td", { text: p.leader === 0 ? "none" : p.leader, class: p.leader === 0 ? "lagging" : "" }),
    el("td", { text: (p.replicas ?? []).join(", ") }),
    el("td", { text: p.commit_index }),
    el("td", { text: p.log_end }),
    el("td", { text: p.lag, class: p.lag > 0 ? "lagging" : "" }),
  );
}
