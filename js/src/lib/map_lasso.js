// The EmbeddingMap's lasso over its own typed coordinates (issue 15: a lasso over 1M
// points back in Python within 1 s). regl-scatterplot 1.16 finds the lassoed points over
// its per-point [x, y] arrays and then builds its selection state point by point
// (select(): a Set, a texture-coordinate array, seconds at 600k points on a busy machine
// without a GPU) before it tells anyone. The map therefore computes the same set itself,
// at mouse-up and before regl-scatterplot does: the same polygon (the lasso's vertices as
// last drawn, from its "lassoExtend" events), the same non-zero winding rule, over the
// Float32Array of coordinates, and sends it to Python at once as one Uint32Array buffer.
// regl-scatterplot's own selection (what is drawn) follows; it is equal to this one.

/** Milliseconds between the map's lasso message and regl-scatterplot's lasso end. */
export const LASSO_END_DELAY_MS = 50;

/** Sorted indices (Uint32Array) below `n` as a bit mask (bit i of byte i >> 3, least
 * significant first: numpy's unpackbits(bitorder="little")): n / 8 bytes, smaller than
 * 4 bytes an index from n / 32 indices on. */
export function packBits(indices, n) {
  const bits = new Uint8Array(Math.ceil(n / 8));
  for (let k = 0; k < indices.length; k++) bits[indices[k] >> 3] |= 1 << (indices[k] & 7);
  return bits;
}

/** Flat [x0, y0, x1, y1, ...] of a lasso's vertices [[x, y], ...] (null if < 3). */
export function flatPolygon(vertices) {
  if (!vertices || vertices.length < 3) return null;
  const flat = new Float64Array(vertices.length * 2);
  for (let i = 0; i < vertices.length; i++) {
    flat[2 * i] = vertices[i][0];
    flat[2 * i + 1] = vertices[i][1];
  }
  return flat;
}

/** Indices (Uint32Array, ascending) of the first `n` points of `coords` (x, y interleaved)
 * inside `polygon` (flat), by the non-zero winding rule as regl-scatterplot's
 * isPointInPolygon; a bounding-box test first. */
export function pointsInPolygon(coords, n, polygon) {
  let x0 = Infinity, x1 = -Infinity, y0 = Infinity, y1 = -Infinity;
  for (let k = 0; k < polygon.length; k += 2) {
    const px = polygon[k], py = polygon[k + 1];
    if (px < x0) x0 = px;
    if (px > x1) x1 = px;
    if (py < y0) y0 = py;
    if (py > y1) y1 = py;
  }
  const out = new Uint32Array(n);
  let m = 0;
  const last = polygon.length - 2;
  for (let i = 0; i < n; i++) {
    const px = coords[2 * i], py = coords[2 * i + 1];
    if (px < x0 || px > x1 || py < y0 || py > y1) continue;
    let winding = 0;
    for (let k = 0, j = last; k < polygon.length; j = k, k += 2) {
      const ax = polygon[k], ay = polygon[k + 1], bx = polygon[j], by = polygon[j + 1];
      if (ay <= py) {
        if (by > py && (bx - ax) * (py - ay) - (px - ax) * (by - ay) > 0) winding++;
      } else if (by <= py && (bx - ax) * (py - ay) - (px - ax) * (by - ay) < 0) {
        winding--;
      }
    }
    if (winding !== 0) out[m++] = i;
  }
  return out.slice(0, m);
}

/** Sorted union (`mode` "add"), difference ("remove") or `found` itself ("set") of two
 * ascending Uint32Arrays of indices below `n`. */
export function combine(current, found, mode, n) {
  if (mode === "set") return found;
  const mark = new Uint8Array(n);
  for (let k = 0; k < current.length; k++) mark[current[k]] = 1;
  for (let k = 0; k < found.length; k++) mark[found[k]] = mode === "add" ? 1 : 0;
  let m = 0;
  for (let i = 0; i < n; i++) m += mark[i];
  const out = new Uint32Array(m);
  for (let i = 0, k = 0; i < n; i++) if (mark[i]) out[k++] = i;
  return out;
}

/** True when two array-likes hold the same numbers in the same order. */
export function sameIndices(a, b) {
  if (a.length !== b.length) return false;
  for (let k = 0; k < a.length; k++) if (a[k] !== b[k]) return false;
  return true;
}

/** Follow `scatter`'s mouse lasso and, at mouse-up (window, capture phase: before
 * regl-scatterplot's own handler), call `send(indices)` with the new selection (Uint32Array,
 * ascending): the lassoed points, added to `current()` with the merge key, taken out of it
 * with Alt (regl-scatterplot's actionKeyMap of the map). `stats.lassoTimes` (a dataset:
 * for probes): "mouse-up,found,sent" in ms since the epoch. Returns a function that unhooks. */
export function fastLasso(scatter, { coords, n, current, send, mergeKey, stats = {} }) {
  let polygon = null;
  let active = false;
  scatter.subscribe("lassoStart", () => { active = true; polygon = null; });
  scatter.subscribe("lassoExtend", ({ coordinates }) => { polygon = coordinates; });
  const onUp = (e) => {
    if (!active) return;
    active = false;
    const t0 = Date.now();
    const flat = flatPolygon(polygon);
    polygon = null;
    if (!flat) return;
    const found = pointsInPolygon(coords(), n(), flat);
    const mode = e[mergeKey] ? "add" : e.altKey ? "remove" : "set";
    const t1 = Date.now();
    send(combine(Uint32Array.from(current()), found, mode, n()));
    stats.lassoTimes = `${t0},${t1},${Date.now()}`; // mouse-up, found, sent (ms since epoch)
    // regl-scatterplot's own lasso end (seconds at 1M on a busy page) gets this mouse-up a
    // moment later, so the message above leaves the page first (a WebSocket message is
    // written out by the page's main thread); the click that a closed lasso makes (it ends
    // where it began) is not a click on a point
    e.stopImmediatePropagation();
    const init = { clientX: e.clientX, clientY: e.clientY, button: e.button, buttons: e.buttons,
      ctrlKey: e.ctrlKey, metaKey: e.metaKey, altKey: e.altKey, shiftKey: e.shiftKey };
    const swallow = (c) => c.stopImmediatePropagation();
    window.addEventListener("click", swallow, { capture: true, once: true });
    setTimeout(() => {
      window.removeEventListener("click", swallow, { capture: true });
      window.dispatchEvent(new MouseEvent("mouseup", init));
    }, LASSO_END_DELAY_MS);
  };
  window.addEventListener("mouseup", onUp, { capture: true });
  return () => window.removeEventListener("mouseup", onUp, { capture: true });
}
