// Which nodes the page can talk to: each node's HTTP origin, learnt from
// the last /api/cluster answer (listener "http") and /api/demo answer
// ("http"). Pure: the page's location is passed in, so node's test runner
// can import it.

/**
 * The origin of an advertised "host:port" as seen from a page at `page`
 * ({protocol, hostname}); an unspecified host (0.0.0.0, [::]) means the
 * page's own host. Null when the address is not host:port.
 */
export function originOf(address, page) {
  const match = /^(\[[0-9a-fA-F:.]+\]|[^:[\]\s/]+):(\d{1,5})$/.exec(String(address).trim());
  if (!match) return null;
  let host = match[1];
  if (host === "0.0.0.0" || host === "[::]") host = page.hostname;
  return `${page.protocol}//${host}:${match[2]}`;
}

export class NodeDirectory {
  constructor(page) {
    this.page = page;
    /** node id -> origin */
    this.origins = new Map();
  }

  /** Learns every node's HTTP origin from an /api/cluster answer. */
  learnCluster(cluster) {
    for (const node of cluster?.nodes ?? []) {
      const address = node.addresses?.http;
      if (address) this.learn(node.node_id, address);
    }
  }

  /** Learns every node's HTTP origin from an /api/demo answer. */
  learnDemo(demo) {
    for (const node of demo?.nodes ?? []) {
      if (node.http) this.learn(node.node_id, node.http);
    }
  }

  learn(nodeId, address) {
    const origin = originOf(address, this.page);
    if (origin && Number.isInteger(nodeId)) this.origins.set(nodeId, origin);
  }

  /** The node id whose origin is `origin`, if known. */
  nodeAt(origin) {
    for (const [nodeId, known] of this.origins) if (known === origin) return nodeId;
    return null;
  }

  /**
   * The other nodes to try when `origin` stops answering, as [nodeId,
   * origin]: those with a higher id first (in order), then the lower ones,
   * so successive failures walk around the cluster.
   */
  candidates(origin) {
    const current = this.nodeAt(origin) ?? -Infinity;
    const others = [...this.origins].filter(([, known]) => known !== origin);
    others.sort(([a], [b]) => a - b);
    const after = others.filter(([nodeId]) => nodeId > current);
    const before = others.filter(([nodeId]) => nodeId <= current);
    return [...after, ...before];
  }
}
