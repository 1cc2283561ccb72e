// A bounded log: keeps the newest `limit` entries, says which ones it
// dropped (so a view can remove their nodes), and matches a text filter.
// Pure: no DOM.

export const KEEP_MIN = 10;
export const KEEP_MAX = 10000;
export const KEEP_DEFAULT = 500;

/** A keep-last value from user input, within [KEEP_MIN, KEEP_MAX]. */
export function clampKeep(value) {
  const n = Math.round(Number(value));
  if (!Number.isFinite(n)) return KEEP_DEFAULT;
  return Math.min(KEEP_MAX, Math.max(KEEP_MIN, n));
}

export class LogBuffer {
  constructor(limit = KEEP_DEFAULT) {
    this.limit = clampKeep(limit);
    // Oldest first: appending is cheap; views read it backwards.
    this.entries = [];
  }

  /** Adds an entry; returns the entries dropped to stay within the limit. */
  push(entry) {
    this.entries.push(entry);
    return this.trim();
  }

  setLimit(limit) {
    this.limit = clampKeep(limit);
    return this.trim();
  }

  clear() {
    const dropped = this.entries;
    this.entries = [];
    return dropped;
  }

  get size() {
    return this.entries.length;
  }

  /** The newest entries first, those matching `filter` (lower case) only. */
  newestFirst(filter = "") {
    const out = [];
    for (let i = this.entries.length - 1; i >= 0; i -= 1) {
      if (matches(this.entries[i], filter)) out.push(this.entries[i]);
    }
    return out;
  }

  trim() {
    const excess = this.entries.length - this.limit;
    return excess > 0 ? this.entries.splice(0, excess) : [];
  }
}

/** Whether an entry (with a lower-case `search` text) matches a filter. */
export function matches(entry, filter) {
  return filter === "" || entry.search.includes(filter);
}
