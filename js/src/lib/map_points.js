// The EmbeddingMap's points for regl-scatterplot, built from the binary traits without
// JSON: coordinates (float32 x,y interleaved) and colour codes (uint8). regl-scatterplot
// takes an array of [x, y, valueA, valueB]; it is built once per layout and recoloured in
// place, and a recolour reuses the spatial index (KDBush) of the drawn coordinates, so
// only the colour state texture is rebuilt (a few tens of ms at 1M points). Above
// FAST_RECOLOR points a recolour skips regl-scatterplot's draw() altogether
// (recolorInPlace): the value channels of its point state texture are rewritten from the
// Uint8Array of codes and the texture re-uploaded; the first frame after it is a moving
// (subsampled) one, so the new colours show at once and the full set follows.

/** Above this many points the draw order (grey under colour) is left alone: it costs a
 * Set of all indices inside regl-scatterplot, and density opacity already helps. */
export const ORDER_LIMIT = 500000;

/** [[x, y, code, code ? 1 : 0], ...] for the first `n` points. */
export function buildPoints(coords, codes, n) {
  const pts = new Array(n);
  for (let i = 0; i < n; i++) {
    const c = codes[i] || 0;
    pts[i] = [coords[2 * i], coords[2 * i + 1], c, c ? 1 : 0];
  }
  return pts;
}

/** Write new colour codes into `pts` in place; true if any point changed. */
export function recodePoints(pts, codes) {
  let changed = false;
  for (let i = 0; i < pts.length; i++) {
    const c = codes[i] || 0;
    const p = pts[i];
    if (p[2] !== c) { p[2] = c; p[3] = c ? 1 : 0; changed = true; }
  }
  return changed;
}

/** Draw order: code-0 points (unlabeled / missing) first so coloured points are drawn
 * over them; null when it would not change anything or `n` is above ORDER_LIMIT. */
export function drawOrder(codes, n) {
  if (n > ORDER_LIMIT) return null;
  const under = [];
  const over = [];
  for (let i = 0; i < n; i++) (codes[i] ? over : under).push(i);
  if (!under.length || !over.length) return null;
  return under.concat(over);
}

/** Draw `pts` (valueB is 1 for coloured points, 0 for grey ones: grey points are drawn
 * smaller and fainter); `sameCoords`: the coordinates are those drawn last, so their
 * spatial index is reused instead of rebuilt. */
export async function drawPoints(scatter, pts, codes, { sameCoords = false, ...opts } = {}) {
  const index = sameCoords ? scatter.get("spatialIndex") : undefined;
  await scatter.draw(pts, {
    zDataType: "categorical", wDataType: "categorical",
    ...(index ? { spatialIndex: index } : {}), ...opts,
  });
  scatter.set({ pointOrder: drawOrder(codes, pts.length) });
}

/** Point counts from which a recolour rewrites the state texture in place. */
export const FAST_RECOLOR = 50000;

/** Recolour the drawn points of `scatter` to `codes` (Uint8Array, n) without a draw():
 * value A = code, value B = code ? 1 : 0 written into the point state texture that
 * lib/map_motion.js's regl wrapper saw made (`motion.textures`), re-uploaded; then a
 * cheap frame (motion.touch) and the full set once still. False (nothing done) when
 * there is no such texture; `pts` stay as they were (recodePoints brings them up to
 * date before any later draw() that reuses them). */
export function recolorInPlace(scatter, motion, codes, n) {
  const res = Math.max(2, Math.ceil(Math.sqrt(n)));
  const st = motion.textures.get(res);
  if (n < FAST_RECOLOR || !st || st.data.length < 4 * n) return false;
  const d = st.data;
  for (let i = 0; i < n; i++) {
    const c = codes[i] || 0;
    d[4 * i + 2] = c;
    d[4 * i + 3] = c ? 1 : 0;
  }
  try {
    st.tex({ data: d, shape: [res, res, 4], type: "float" });
  } catch (err) { // destroyed (a new draw is on its way): let draw() do it
    motion.textures.delete(res);
    return false;
  }
  scatter.set({ pointOrder: drawOrder(codes, n) });
  motion.touch({ lowRes: false }); // a recolour is not a move: full resolution
  scatter.redraw();
  return true;
}
