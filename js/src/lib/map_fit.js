// Where the EmbeddingMap's camera goes so that the points fill the plot: their bounding
// box (bar a few strays), fitted (aspect kept) into the plot minus the strip on the right
// that the legend covers, as the rectangle regl-scatterplot's zoomToArea wants (data
// coordinates, which are its normalized device coordinates here; y up).

/** Rectangle {x, y, width, height} for zoomToArea, or null when there is nothing to fit.
 * `coords`: float32 x,y interleaved; `w`, `h`: plot size (px); `reserve`: px on the
 * right kept free (ignored when it would leave less than half the plot); `pad`: px. */
export function fitRect(coords, w, h, reserve = 0, pad = 14) {
  const [x0, x1] = robustRange(coords, 0);
  const [y0, y1] = robustRange(coords, 1);
  if (!(x0 <= x1) || w < 10 || h < 10) return null;
  if (w - reserve - 2 * pad < w / 2) reserve = 0;
  const bw = Math.max(x1 - x0, 1e-6);
  const bh = Math.max(y1 - y0, 1e-6);
  const availW = Math.max(w - reserve - 2 * pad, 1);
  const availH = Math.max(h - 2 * pad, 1);
  const s = Math.max(bw / availW, bh / availH); // data units per pixel
  const left = x0 - (pad + (availW - bw / s) / 2) * s;
  const bottom = y0 - (pad + (availH - bh / s) / 2) * s;
  return { x: left, y: bottom, width: w * s, height: h * s };
}

/** [lo, hi] of coordinate `axis` (0: x, 1: y) without the 0.2% most extreme values at
 * each end (a few stray points would otherwise shrink everything), on a sample. */
function robustRange(coords, axis) {
  const n = coords.length >> 1;
  const step = Math.max(1, Math.floor(n / 20000));
  const v = [];
  for (let i = 0; i < n; i += step) {
    const c = coords[2 * i + axis];
    if (Number.isFinite(c)) v.push(c);
  }
  if (!v.length) return [Infinity, -Infinity];
  v.sort((a, b) => a - b);
  const cut = Math.floor(v.length * 0.002);
  return [v[cut], v[v.length - 1 - cut]];
}
