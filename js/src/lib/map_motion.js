// Cheaper frames while the map's view moves (issue 15: pan/zoom at 1M+ points).
// Without a GPU (SwiftShader) drawing a frame costs in proportion to the points drawn:
// ~1.5 s for 1M points on 2 busy cores. While the view moves (wheel, drag, a zoom
// transition, a lasso being drawn) the map therefore draws a stratified subsample of at
// most MOVING_POINTS points (and of the selection), with density opacity scaled up to
// match, and the full set once the view has been still for SETTLE_MS. Nothing is
// re-uploaded on pan/zoom: the point state texture stays, only the view matrix changes;
// the subsample's index buffer is built once per point count.
//
// regl-scatterplot has no option for this, so its regl is wrapped (motionRegl): point
// draw commands get a `count` / `stateIndex` buffer / `opacityDensity` (and a `pointScale`
// times the drawing-buffer scale, lib/map_renderer.js) that switch to
// the subsample while `motion.moving`. The body pass is told apart from the selection
// passes by its `globalState` uniform (0 normal, 1 active, 3 background, 2 hover).
// Density opacity ("density", above 50,000 points) is switched off while moving and the
// shader's density branch is fed the last still frame's value (Motion.freeze / thaw).

/** Points drawn per pass while the view moves. Without a GPU the frame's cost is the
 * points drawn (SwiftShader; a blank page clears and copies a frame at 40-60 frames/s, with
 * 60,000 points at 5-10): at 1M points, 60,000 -> 15,000 doubled pan/zoom frames/s in the
 * same page under load 11 (issue 15, benchmarks/map_render.py). */
export const MOVING_POINTS = 15000;
/** Milliseconds without movement before the full set is drawn again. */
export const SETTLE_MS = 160;
/** Drawing-buffer scale of moving pan/zoom frames (lib/map_renderer.js): half the width
 * and height, a quarter of the pixels to clear, fill and composite; CSS scales it up. */
export const MOVING_SCALE = 0.5;
/** Touches closer than this (ms) belong to one move (Motion.touch). */
const SAME_MOVE_MS = 12;

const BODY = 0;
const SELECTED = new Set([1, 3]);
/** Above this many selected points the selection is drawn without its outline and inner
 * border passes (at 600k selected points they are overlapping blobs that tripled the
 * frame's cost), only in the active colour. */
export const OUTLINE_LIMIT = 50000;

/** When the view last moved, and a full redraw once it settles. */
export class Motion {
  constructor({ budget = MOVING_POINTS, settleMs = SETTLE_MS, scale = MOVING_SCALE,
    onSettle = () => {}, selection = () => null, scatter = () => null } = {}) {
    this.budget = budget;
    this.movingScale = scale;
    this.lowRes = false; // this motion may be drawn at movingScale (pan/zoom, not a lasso)
    this.drawScale = 1; // the scale the renderer draws at now (point sizes follow it)
    this.settleMs = settleMs;
    this.onSettle = onSettle;
    this.selection = selection; // () => the selected indices as drawn (array), for its subsample
    // density opacity is off while moving (regl-scatterplot re-counts the points in view, an
    // O(n) kdbush query, on nearly every moving frame: its throttle does not hold; multi-second
    // stalls at 1M): moving frames use the last still frame's density opacity (`frozen`)
    this.scatter = scatter; // () => the regl-scatterplot instance or null
    this.density = null; // the density opacity of the last still frame's body pass
    this.frozen = null; // that value while density opacity is switched off, else null
    this.until = 0;
    this.timer = null;
    this.cache = new Map(); // key -> {buffer, count, scale}
    this.passes = 0; // selection draw commands made so far (wrapCommand)
    this.textures = new Map(); // side -> {tex, data, res}: float RGBA textures made (motionRegl)
  }

  get moving() { return performance.now() < this.until; }

  /** The drawing-buffer scale for a frame drawn now (lib/map_renderer.js). */
  get frameScale() { return this.moving && this.lowRes ? this.movingScale : 1; }

  /** The view moves now: cheap frames until it has been still for settleMs, or for 1.5
   * gaps between moves when moves come slower than that (a busy machine: otherwise a
   * full frame would start between two moves and make the next gap longer still). */
  touch({ lowRes = true } = {}) {
    const now = performance.now();
    if (!this.moving) this.freeze();
    this.lowRes = lowRes && (this.moving ? this.lowRes : true);
    // the gap between moves, not between the touches of one move (a mouse move or wheel
    // step and the "view" event of the frame it causes touch twice, ms apart: measured
    // from the second, the gap was ~0 and a slow frame let the full set start mid-gesture)
    const gap = now - (this.last || -Infinity);
    if (gap >= SAME_MOVE_MS) {
      this.last = now;
      this.gap = gap < 1500 ? gap : 0;
    }
    const wait = Math.max(this.settleMs, 1.5 * (this.gap || 0));
    this.until = now + wait;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => { this.timer = null; this.thaw(); this.onSettle(); }, wait + 20);
  }

  /** Switch regl-scatterplot's density opacity off; draw with the last still value. */
  freeze() {
    const sc = this.scatter();
    if (!sc || this.frozen !== null || this.density === null || sc.get("opacityBy") !== "density") return;
    this.frozen = this.density;
    sc.set({ opacityBy: null });
  }

  /** Density opacity back on, and one query of the points in view for the still frame
   * (re-setting the same view makes regl-scatterplot count them; no "view" event). */
  thaw() {
    const sc = this.scatter();
    if (this.frozen === null) return;
    this.frozen = null;
    if (!sc) return;
    sc.set({ opacityBy: "density" });
    sc.view(sc.get("cameraView"), { preventEvent: true });
  }

  /** {buffer, count, scale} of the subsample for a pass of `n` points, or null (draw all). */
  sub(regl, kind, n, res, eps) {
    if (!this.moving || n <= this.budget) return null;
    let indices = null;
    let key = `${kind}:${n}:${res}`;
    if (kind === "selected") {
      const sel = this.selection();
      if (!sel || sel.length !== n) return null;
      if (this.cache.get("selected")?.sel === sel && this.cache.get("selected").key === key) {
        return this.cache.get("selected");
      }
      indices = stratified(n, this.budget).map((i) => sel[i]);
      key = "selected";
    } else if (this.cache.has(key)) {
      return this.cache.get(key);
    } else {
      indices = stratified(n, this.budget);
    }
    const old = this.cache.get(key);
    if (old) old.buffer.destroy();
    const entry = { buffer: regl.buffer({ usage: "static", type: "float", data: texCoords(indices, res, eps) }),
      count: indices.length, scale: n / indices.length, key: `${kind}:${n}:${res}`, sel: kind === "selected" ? this.selection() : null };
    this.cache.set(key, entry);
    return entry;
  }

  destroy() {
    clearTimeout(this.timer);
    for (const e of this.cache.values()) e.buffer.destroy();
    this.cache.clear();
    this.textures.clear();
  }
}

/** `k` indices spread over 0..n-1: one random index in each of k equal strata
 * (Uint32Array, sorted): every part of the data keeps its share, whatever its order. */
export function stratified(n, k) {
  const out = new Uint32Array(k);
  let seed = 12345;
  for (let j = 0; j < k; j++) {
    seed = (seed * 1103515245 + 12345) >>> 0;
    const lo = Math.floor((j * n) / k);
    const hi = Math.floor(((j + 1) * n) / k);
    out[j] = lo + (seed % Math.max(1, hi - lo));
  }
  return out;
}

/** regl-scatterplot's state-texture coordinates of `indices` (x, y interleaved). */
export function texCoords(indices, res, eps) {
  const out = new Float32Array(indices.length * 2);
  for (let j = 0; j < indices.length; j++) {
    const i = indices[j];
    out[2 * j] = (i % res) / res + eps;
    out[2 * j + 1] = Math.floor(i / res) / res + eps;
  }
  return out;
}

/** A point draw command's options with the subsample while moving (see the top). */
function wrapCommand(opts, regl, motion) {
  const u = opts && opts.uniforms;
  const attr = opts && opts.attributes && opts.attributes.stateIndex;
  if (!u || !attr || opts.primitive !== "points" || typeof opts.count !== "function") return opts;
  const kind = u.globalState === BODY ? "body" : SELECTED.has(u.globalState) ? "selected" : null;
  if (!kind || typeof u.stateTexRes !== "function" || typeof attr.buffer !== "function") return opts;
  const { count, uniforms } = { count: opts.count, uniforms: u };
  // regl-scatterplot makes the selection passes in the order outline, inner border, body
  const border = kind === "selected" && (motion.passes += 1) < 3;
  const pick = (c, p) => motion.sub(regl, kind, count(c, p), uniforms.stateTexRes(c, p), uniforms.stateTexEps(c, p));
  const out = {
    ...opts,
    count: (c, p) => {
      const n = count(c, p);
      if (border && n > OUTLINE_LIMIT) return 0;
      const s = pick(c, p); return s ? s.count : n;
    },
    attributes: { ...opts.attributes, stateIndex: { ...attr, buffer: (c, p) => { const s = pick(c, p); return s ? s.buffer : attr.buffer(c, p); } } },
  };
  out.uniforms = { ...u };
  if (typeof u.pointScale === "function") { // points keep their CSS size in a low-res frame
    out.uniforms.pointScale = (c, p) => u.pointScale(c, p) * motion.drawScale;
  }
  const byDensity = u.isOpacityByDensity;
  if (typeof byDensity === "function") { // the shader's density branch while it is frozen
    out.uniforms.isOpacityByDensity = (c, p) => (motion.frozen !== null ? 1 : byDensity(c, p));
  }
  if (kind === "body" && typeof u.opacityDensity === "function") {
    out.uniforms.opacityDensity = (c, p) => {
      let a = motion.frozen;
      if (a === null) {
        a = u.opacityDensity(c, p);
        if (!motion.moving && typeof byDensity === "function" && byDensity(c, p)) motion.density = a;
      }
      const s = pick(c, p); return s ? Math.min(1, a * s.scale) : a;
    };
  }
  return out;
}

/** `regl` whose commands draw the subsample while `motion.moving`; everything else passes
 * through. The renderer's float frame buffer becomes 8-bit (a quarter of the bytes per
 * pixel to blend and read back each frame: the per-frame cost without a GPU). */
export function motionRegl(regl, motion) {
  return new Proxy(regl, {
    apply: (target, self, args) => target(wrapCommand(args[0], regl, motion), ...args.slice(1)),
    get: (target, prop) => {
      if (prop === "texture") { // remember square float RGBA textures by size: the point state
        return (o, ...rest) => { // texture (x, y, value A, value B per point) is recoloured in place
          const tex = target.texture(o, ...rest);
          if (o && o.type === "float" && o.data instanceof Float32Array && o.shape && o.shape[2] === 4) {
            motion.textures.set(o.shape[0], { tex, data: o.data, res: o.shape[0] });
          }
          return tex;
        };
      }
      if (prop === "framebuffer") {
        return (o, ...rest) => target.framebuffer(o && o.colorType === "float" && !o.color && !o.colors
          ? { ...o, colorType: "uint8" } : o, ...rest);
      }
      return target[prop];
    },
  });
}
