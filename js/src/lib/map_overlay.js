// Marks drawn over the EmbeddingMap's WebGL canvas on a 2-D canvas of the same size: the
// Session's focused item (a ring with ticks, e.g. the Labeler's current item or a hovered
// search tile) and its highlighted items (outlined, enlarged points, e.g. the search
// results). Positions come from regl-scatterplot's getScreenPosition, so pan, zoom and
// resize only need a redraw (coalesced into one animation frame).
import { h } from "./style.js";
import { resolveCss } from "./theme.js";

const MAX_HIGHLIGHT = 20000; // more outlined points than this would hide the map anyway

export class MapOverlay {
  /** `body`: the positioned element holding `mapCanvas`; `pointSize()`: px. */
  constructor(body, mapCanvas, { pointSize, colorOf }) {
    this.body = body;
    this.pointSize = pointSize;
    this.colorOf = colorOf; // (i) -> CSS colour of point i (its fill on the map)
    this.canvas = h("canvas", { class: "dfw-map-overlay", "aria-hidden": "true" });
    mapCanvas.after(this.canvas); // under the legend, tip and pinned item
    this.scatter = null;
    this.focus = -1;
    this.highlight = new Uint32Array(0);
    this.frame = 0;
  }

  attach(scatter) { this.scatter = scatter; this.redraw(); }
  setFocus(i) { this.focus = Number.isInteger(i) ? i : -1; this.redraw(); }
  setHighlight(indices) { this.highlight = indices || new Uint32Array(0); this.redraw(); }

  /** Draw at the next animation frame (many calls in one frame draw once). */
  redraw() {
    if (this.frame) return;
    this.frame = requestAnimationFrame(() => { this.frame = 0; this.drawNow(); });
  }

  _position(i) {
    try {
      return this.scatter.getScreenPosition(i);
    } catch (err) { // points not drawn yet
      return undefined;
    }
  }

  drawNow() {
    const { canvas, body } = this;
    const w = body.clientWidth;
    const hgt = body.clientHeight;
    const dpr = window.devicePixelRatio || 1;
    if (canvas.width !== Math.round(w * dpr) || canvas.height !== Math.round(hgt * dpr)) {
      canvas.width = Math.round(w * dpr);
      canvas.height = Math.round(hgt * dpr);
    }
    const ctx = canvas.getContext("2d");
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, w, hgt);
    if (!this.scatter) return;
    // read at draw time (CSS strings: a canvas ignores [r, g, b, a] arrays), so a theme
    // switch only needs a redraw
    const fg = resolveCss(body, "--jp-ui-font-color0", "#000000");
    const bg = resolveCss(body, "--jp-layout-color0", "#ffffff");
    const r = Math.max(3, this.pointSize() / 2 + 2.5);
    const inside = (p, pad) => p && p[0] >= -pad && p[1] >= -pad && p[0] <= w + pad && p[1] <= hgt + pad;
    // highlighted items: the point's own colour, enlarged, outlined in the text colour
    const hl = this.highlight;
    ctx.lineWidth = 1.5;
    ctx.strokeStyle = fg;
    for (let k = 0; k < Math.min(hl.length, MAX_HIGHLIGHT); k++) {
      const p = this._position(hl[k]);
      if (!inside(p, r)) continue;
      ctx.beginPath();
      ctx.arc(p[0], p[1], r, 0, 2 * Math.PI);
      ctx.fillStyle = this.colorOf(hl[k]);
      ctx.fill();
      ctx.stroke();
    }
    // the focused item: a ring with four ticks, on a halo of the background colour
    const p = this.focus >= 0 ? this._position(this.focus) : undefined;
    if (!inside(p, 24)) return;
    const ring = Math.max(9, r + 6);
    const ticks = (path) => {
      path.beginPath();
      path.arc(p[0], p[1], ring, 0, 2 * Math.PI);
      for (const [dx, dy] of [[1, 0], [-1, 0], [0, 1], [0, -1]]) {
        path.moveTo(p[0] + dx * (ring + 2), p[1] + dy * (ring + 2));
        path.lineTo(p[0] + dx * (ring + 8), p[1] + dy * (ring + 8));
      }
    };
    ctx.lineCap = "round";
    ticks(ctx);
    ctx.strokeStyle = bg;
    ctx.lineWidth = 5.5;
    ctx.stroke();
    ctx.strokeStyle = fg;
    ctx.lineWidth = 2.5;
    ctx.stroke();
  }

  destroy() {
    cancelAnimationFrame(this.frame);
    this.canvas.remove();
  }
}
