// The Labeler's images, preloaded: fetched ahead of time through the one image path
// (lib/images.js ImageStore: a request, binary buffers back) and decoded before they are
// needed, so showing the next item is a DOM swap with no network or decode wait.
// Also keeps each item's facts from Python (id, the model's guesses, review details).
import { ImageStore } from "./images.js";

export class LabelerImages {
  /** @param model the anywidget model; `edge` the large image's edge in CSS px */
  constructor(model, { edge = 224, max = 256 } = {}) {
    this.store = new ImageStore(model, { edge, max: 2 * max });
    this.max = max;
    /** @type {Map<number, {img: HTMLImageElement, decoded: boolean, ready: Promise<void>}>} */
    this.big = new Map();
    this.failed = new Set(); // indices Python could not send (shown as such)
    this.facts = new Map(); // index -> {index, id, guesses, given?, suggested?, score?}
  }

  /** Fetch and decode the images of `indices` not in hand yet; resolves when they are
   * decoded (rejects when the kernel does not answer). */
  async load(indices) {
    const need = indices.filter((i) => !this.big.has(i) && !this.failed.has(i));
    if (!need.length) return;
    const entries = await this.store.get(need);
    const ready = [];
    entries.forEach((e, k) => {
      const i = need[k];
      if (this.big.has(i)) return;
      if (!e) {
        this.failed.add(i);
        return;
      }
      const img = this.store.img(i);
      img.classList.toggle("dfw-pixelated", e.width > 0 && e.width < 96);
      img.style.imageRendering = "";
      const entry = { img, decoded: false, ready: null };
      entry.ready = img.decode().catch(() => undefined).then(() => {
        entry.decoded = true;
      });
      this.big.set(i, entry);
      ready.push(entry.ready);
    });
    await Promise.all(ready);
  }

  /** The large image entry of item i, or undefined. */
  get(index) {
    return this.big.get(index);
  }

  /** A fresh <img> for a grid thumbnail (the browser reuses the decoded image). */
  thumb(index) {
    const img = this.store.img(index);
    if (img && img.style.imageRendering) {
      img.style.imageRendering = "";
      img.classList.add("dfw-pixelated");
    }
    return img;
  }

  /** Facts from a Python "items" / "guesses" message (merged into what is known). */
  putFacts(items) {
    for (const f of items || []) this.facts.set(f.index, { ...(this.facts.get(f.index) || {}), ...f });
  }

  /** Drop images and facts of items not in `keep` once more than `max` are held. */
  prune(keep) {
    if (this.big.size > this.max) {
      for (const i of [...this.big.keys()]) if (!keep.has(i)) this.big.delete(i);
      for (const i of [...this.facts.keys()]) if (!keep.has(i)) this.facts.delete(i);
      this.failed.clear();
    }
    this.store.prune(keep);
  }

  /** Forget everything (the view is removed): object URLs are revoked. */
  clear() {
    this.big.clear();
    this.facts.clear();
    this.store.clear();
  }
}
