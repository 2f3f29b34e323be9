// The EmbeddingMap's WebGL renderer, sized to the map rather than to the window.
// regl-scatterplot draws into a float framebuffer of its renderer's canvas, runs a gamma
// pass over every pixel and copies the middle into the map's 2-D canvas each frame; by
// default that canvas is as large as the browser window. A renderer of the map's own
// size does that per-frame work (which dominates without a GPU) only for the map's pixels.
// Its regl is wrapped by lib/map_motion.js (a subsample while the view moves, an 8-bit
// frame buffer) and its WebGL context has no multisampling (the points are drawn into a
// frame buffer anyway; multisampling only made the full-canvas copy pass 4x dearer).
//
// Without a GPU (SwiftShader) the copy into the 2-D canvas (drawImage) waits for the GPU
// process to finish the frame and reads it back: ~90% of the page's main-thread time while
// panning at 1M points (CPU profile, issue 15). While the view pans or zooms the frame is
// therefore drawn at motion.frameScale (half the width and height: a quarter of the pixels
// to clear, fill, gamma-pass, read back and composite), into a 2-D canvas of that size that
// CSS stretches over the map, points at their CSS size; the still frame is full size.
// (Drawing straight into a visible WebGL canvas, no copy, was measured and was slower:
// presenting a WebGL canvas to the software compositor cost more than the copy.)
import createRegl from "regl";
import { createRenderer } from "regl-scatterplot";
import { motionRegl } from "./map_motion.js";

const GL_EXTENSIONS = ["OES_texture_float", "OES_element_index_uint", "WEBGL_color_buffer_float", "EXT_float_blend"];
/** WebGL context attributes of the renderer's canvas and 2-D context attributes of the
 * map's visible canvas. A benchmark page may override them before the map is made
 * (globalThis.dfwMapContext = {webgl: {...}, canvas2d: {...}}: benchmarks/map_render.py
 * --context; for measurements only, not an API). */
const contextAttributes = () => {
  const o = globalThis.dfwMapContext || {};
  return { webgl: { antialias: false, preserveDrawingBuffer: true, ...(o.webgl || {}) },
    canvas2d: o.canvas2d || null };
};

/** {renderer, resize(w, h), destroy()} with a canvas of `width` x `height` CSS px;
 * `motion`: a lib/map_motion.js Motion (cheap, smaller frames while the view moves). */
export function mapRenderer(width, height, motion) {
  const canvas = document.createElement("canvas");
  const attrs = contextAttributes();
  const gl = canvas.getContext("webgl", attrs.webgl);
  const extensions = GL_EXTENSIONS.filter((e) => gl.getExtension(e));
  const regl = createRegl({ gl, extensions });
  const inner = createRenderer({ canvas, regl: motion ? motionRegl(regl, motion) : regl });
  let size = [0, 0]; // CSS px
  let scale = 1; // of the drawing buffers now
  const fit = (s, target) => { // renderer and target canvas at `s` x the map's size
    if (s !== scale) {
      scale = s;
      inner.resize(size[0] * s, size[1] * s);
      inner.refresh();
    }
    if (motion) motion.drawScale = s;
    if (target && (target.width !== canvas.width || target.height !== canvas.height)) {
      target.width = canvas.width;
      target.height = canvas.height;
    }
  };
  const render = (draw, target) => {
    if (attrs.canvas2d && target && !target.dfwContext) target.dfwContext = target.getContext("2d", attrs.canvas2d);
    fit(motion ? motion.frameScale : 1, target);
    inner.render(draw, target);
  };
  const renderer = new Proxy(inner, { get: (t, p) => (p === "render" ? render : Reflect.get(t, p)) });
  const resize = (w, h) => {
    const next = [Math.max(1, Math.round(w)), Math.max(1, Math.round(h))];
    if (next[0] === size[0] && next[1] === size[1]) return;
    size = next;
    scale = 1;
    inner.resize(...next);
    inner.refresh();
  };
  resize(width, height);
  return { renderer, resize, destroy: () => inner.destroy() };
}

/** Drawing options for `n` points: above 200,000 points squares (cheaper to fill than
 * circles, the same at 1-2 px) and a slower density-opacity update; above 3,000,000
 * no alpha blending either (regl-scatterplot's performance mode). */
export function largeOptions(n) {
  if (n > 3000000) return { performanceMode: true, opacityByDensityDebounceTime: 250 };
  if (n > 200000) return { renderPointsAsSquares: true, opacityByDensityDebounceTime: 250 };
  return {};
}
