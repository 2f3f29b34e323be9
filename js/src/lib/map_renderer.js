// The EmbeddingMap's WebGL renderer, sized to the map rather than to the window.
// regl-scatterplot draws into a float framebuffer of its renderer's canvas, runs a gamma
// pass over every pixel and copies the middle into the map's 2-D canvas each frame; by
// default that canvas is as large as the browser window. A renderer of the map's own
// size does that per-frame work (which dominates without a GPU) only for the map's pixels.
// Its regl is wrapped by lib/map_motion.js (a subsample while the view moves, an 8-bit
// frame buffer) and its WebGL context has no multisampling (the points are drawn into a
// frame buffer anyway; multisampling only made the full-canvas copy pass 4x dearer).
import createRegl from "regl";
import { createRenderer } from "regl-scatterplot";
import { motionRegl } from "./map_motion.js";

const GL_EXTENSIONS = ["OES_texture_float", "OES_element_index_uint", "WEBGL_color_buffer_float", "EXT_float_blend"];

/** {renderer, resize(w, h), destroy()} with a canvas of `width` x `height` CSS px;
 * `motion`: a lib/map_motion.js Motion (cheap frames while the view moves). */
export function mapRenderer(width, height, motion) {
  const canvas = document.createElement("canvas");
  const gl = canvas.getContext("webgl", { antialias: false, preserveDrawingBuffer: true });
  const extensions = GL_EXTENSIONS.filter((e) => gl.getExtension(e));
  const regl = createRegl({ gl, extensions });
  const renderer = createRenderer({ canvas, regl: motion ? motionRegl(regl, motion) : regl });
  let size = [0, 0];
  const resize = (w, h) => {
    const next = [Math.max(1, Math.round(w)), Math.max(1, Math.round(h))];
    if (next[0] === size[0] && next[1] === size[1]) return;
    size = next;
    renderer.resize(...next);
    renderer.refresh();
  };
  resize(width, height);
  return { renderer, resize, destroy: () => renderer.destroy() };
}

/** Drawing options for `n` points: above 200,000 points squares (cheaper to fill than
 * circles, the same at 1-2 px) and a slower density-opacity update; above 3,000,000
 * no alpha blending either (regl-scatterplot's performance mode). */
export function largeOptions(n) {
  if (n > 3000000) return { performanceMode: true, opacityByDensityDebounceTime: 250 };
  if (n > 200000) return { renderPointsAsSquares: true, opacityByDensityDebounceTime: 250 };
  return {};
}
