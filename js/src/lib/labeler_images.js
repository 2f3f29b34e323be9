// Preloaded item images for the Labeler: bytes arrive from Python ahead of time, become
// object URLs, and each item's large <img> is decoded before it is needed, so showing the
// next item is a DOM swap with no network or decode wait.

export class ImageCache {
  constructor() {
    /** @type {Map<number, {meta: object, url: string|null, big: HTMLImageElement|null, ready: Promise<void>, decoded: boolean}>} */
    this.entries = new Map();
  }

  /** Store items from a Python "items" message: metas[i] describes buffers[i]. */
  put(metas, buffers) {
    metas.forEach((meta, i) => {
      const old = this.entries.get(meta.index);
      const buf = buffers[i];
      if (!buf) {
        if (old) old.meta = { ...old.meta, ...meta };
        return;
      }
      if (old && old.url) URL.revokeObjectURL(old.url);
      const view = buf instanceof DataView ? buf : new DataView(buf.buffer ?? buf);
      const url = URL.createObjectURL(new Blob([view], { type: meta.mime || "image/png" }));
      const big = new Image();
      big.alt = `item ${meta.index}`;
      big.draggable = false;
      big.src = url;
      const entry = { meta, url, big, decoded: false, ready: null };
      entry.ready = big
        .decode()
        .catch(() => undefined)
        .then(() => {
          entry.decoded = true;
        });
      this.entries.set(meta.index, entry);
    });
  }

  /** Update the model's guesses (and review facts) without touching images. */
  update(metas) {
    for (const meta of metas) {
      const e = this.entries.get(meta.index);
      if (e) e.meta = { ...e.meta, ...meta };
    }
  }

  get(index) {
    return this.entries.get(index);
  }

  /** A fresh <img> for a thumbnail (the browser reuses the decoded image of the URL). */
  thumb(index) {
    const e = this.entries.get(index);
    if (!e) return null;
    const img = new Image();
    img.src = e.url;
    img.alt = `item ${index}`;
    img.draggable = false;
    if (e.big && e.big.naturalWidth && e.big.naturalWidth < 96) img.className = "dfw-pixelated";
    return img;
  }

  /** Drop images of items not in `keep` once the cache holds more than `max`. */
  prune(keep, max = 256) {
    if (this.entries.size <= max) return;
    for (const [index, e] of this.entries) {
      if (!keep.has(index)) {
        if (e.url) URL.revokeObjectURL(e.url);
        this.entries.delete(index);
      }
    }
  }

  clear() {
    for (const e of this.entries.values()) if (e.url) URL.revokeObjectURL(e.url);
    this.entries.clear();
  }
}
