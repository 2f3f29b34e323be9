// The one way item images reach the page: ask Python for `indices` at `edge` px with a
// request over custom messages (lib/rpc.js); the reply carries one encoded image per item
// as a binary buffer (never base64, never a trait). Object URLs are cached per model and
// revoked when the cache is pruned (least recently used first) or the view is removed.

import { request } from "./rpc.js";

export class ImageStore {
  /** @param model the anywidget model; `edge` the longest side the view draws, in px */
  constructor(model, { edge = 128, max = 512 } = {}) {
    this.model = model;
    this.edge = edge;
    this.max = max;
    /** @type {Map<number, {url: string, mime: string, width: number, height: number}>} */
    this.entries = new Map();
    this.inflight = new Map(); // index -> Promise
  }

  /** Entries for `indices` (fetched in one request for those not cached yet). */
  async get(indices) {
    for (const i of indices) this.touch(i);
    const want = [...new Set(indices)].filter((i) => !this.entries.has(i) && !this.inflight.has(i));
    if (want.length) {
      const p = request(this.model, { type: "images", indices: want, edge: this.edge }).then(
        ({ content, buffers }) => {
          (content.items || []).forEach((meta, k) => this.put(meta, buffers[k]));
        },
      );
      want.forEach((i) => this.inflight.set(i, p));
      try {
        await p;
      } finally {
        want.forEach((i) => this.inflight.delete(i));
      }
    }
    await Promise.all(indices.map((i) => this.inflight.get(i)).filter(Boolean));
    return indices.map((i) => this.entries.get(i) || null);
  }

  /** Store one image from a reply: `meta` {index, mime, width, height}, `buf` its bytes. */
  put(meta, buf) {
    if (!buf) return;
    const old = this.entries.get(meta.index);
    if (old) URL.revokeObjectURL(old.url);
    const view = buf instanceof DataView ? buf : new DataView(buf.buffer ?? buf);
    const url = URL.createObjectURL(new Blob([view], { type: meta.mime || "image/png" }));
    this.entries.set(meta.index, { url, mime: meta.mime, width: meta.width, height: meta.height });
  }

  /** A fresh <img> for a cached item (pixelated when it is small), or null. */
  img(index, { alt = `item ${index}` } = {}) {
    const e = this.entries.get(index);
    if (!e) return null;
    const img = new Image();
    img.src = e.url;
    img.alt = alt;
    img.draggable = false;
    if (e.width && e.width < 96) img.style.imageRendering = "pixelated";
    return img;
  }

  /** Mark a cached item as just used (entries are kept in least-recently-used order). */
  touch(index) {
    const e = this.entries.get(index);
    if (e) { this.entries.delete(index); this.entries.set(index, e); }
  }

  /** Least recently used first: drop images not in `keep` until at most `max` are cached. */
  prune(keep = new Set()) {
    if (this.entries.size <= this.max) return;
    for (const [index, e] of this.entries) {
      if (this.entries.size <= this.max) break;
      if (!keep.has(index)) {
        URL.revokeObjectURL(e.url);
        this.entries.delete(index);
      }
    }
  }

  /** Revoke every object URL (call when the view is removed). */
  clear() {
    for (const e of this.entries.values()) URL.revokeObjectURL(e.url);
    this.entries.clear();
  }
}
