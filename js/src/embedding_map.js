// EmbeddingMap: a WebGL map of the whole dataset (regl-scatterplot) with thumbnails on
// hover, click-to-pin, lasso/box selection synced with Python and bulk labeling.
//
// Traits (Python <-> JS): _coords (float32 x,y interleaved, in [-1, 1]), _color_codes
// (uint8 index into _palette per point), _legend, _selected (uint32 bytes), pinned,
// _view (visible data rectangle), _classes, _color_by_name, _message, _thumb_size,
// _layout_method and _layout_error (the status line); all arrays travel as binary
// buffers. Hover thumbnails are asked of Python one item at a time (lib/images.js, LRU).
// Python -> JS only: _focus (the Session's focused item, a ring) and _highlight (uint32
// bytes, the Session's highlighted items, outlined), drawn by lib/map_overlay.js.
import createScatterplot from "regl-scatterplot";
import { toFloat32, toUint8, toUint32, toBytes, indicesToBytes } from "./lib/codecs.js";
import { fastLasso, packBits, sameIndices } from "./lib/map_lasso.js";
import { isolateKeys, isMac } from "./lib/keyboard.js";
import { onThemeChange, resolveColor } from "./lib/theme.js";
import { linearScale } from "./lib/scale.js";
import { ImageStore } from "./lib/images.js";
import { request } from "./lib/rpc.js";
import { listeners } from "./lib/events.js";
import { injectStyle, h, showMessage } from "./lib/style.js";
import { MAP_CSS, MAP_CSS_EXTRA, MAP_CSS_ID } from "./lib/map_style.js";
import { MapOverlay } from "./lib/map_overlay.js";
import { fitRect } from "./lib/map_fit.js";
import { buildMapDom } from "./lib/map_dom.js";
import { buildPoints, recodePoints, recolorInPlace, drawPoints as drawAll } from "./lib/map_points.js";
import { mapRenderer, largeOptions } from "./lib/map_renderer.js";
import { Motion } from "./lib/map_motion.js";
import { fmt, renderLegend as drawLegend, fillInfo, fillIndex, placeTip as place, statusText } from "./lib/map_panels.js";

function basePointSize(n) {
  return Math.max(1.5, Math.min(7, 4 * Math.sqrt(20000 / Math.max(n, 1))));
}

function render({ model, el }) {
  injectStyle(MAP_CSS_ID, MAP_CSS + MAP_CSS_EXTRA);

  // ---- DOM -----------------------------------------------------------------------
  const { root, status, modeBtns, colorSelect, selCount, clearBtn, datalist, labelInput,
    canvas, legend, tip, tipThumb, tipInfo, pin, pinImg, pinInfo, body, msg, help } = buildMapDom({
    mode: (m) => setMode(m),
    colorBy: (v) => { model.set("_color_by_name", v); model.save_changes(); },
    clear: () => clearSelection(),
    label: () => applyLabel(),
    unpin: () => setPinned(-1),
  }, (model.get("_color_modes") || []).length ? model.get("_color_modes") : undefined);
  const unIsolate = isolateKeys(root, { wheelTarget: body });
  el.appendChild(root);

  // ---- state -----------------------------------------------------------------------
  const n = () => model.get("_n");
  let coords = toFloat32(model.get("_coords"));
  let codes = toUint8(model.get("_color_codes"));
  let selected = Array.from(toUint32(model.get("_selected")));
  let scatter = null;
  let gl = null; // lib/map_renderer.js: the WebGL renderer, the map's size
  // lib/map_motion.js: a subsample is drawn while the view moves, the full set once it stops
  const motion = new Motion({ onSettle: () => { if (scatter) scatter.redraw(); }, selection: () => selected, scatter: () => scatter });
  let recolors = 0; // colour redraws done (data-recolored: for probes)
  let pts = null; // regl-scatterplot's [x, y, code, coloured] per point (lib/map_points.js)
  let drawn = false;
  let lassoing = false;
  let sentLasso = null; // the lasso's selection as sent at mouse-up (lib/map_lasso.js)
  let unLasso = () => {};
  let pointerMods = { add: false, remove: false };
  let hovered = -1, helpTimer = null;
  const info = new Map(); // index -> info dict from Python
  const thumbs = new ImageStore(model, { edge: model.get("_thumb_size") || 72, max: 512 }); // hover, LRU
  const images = new ImageStore(model, { edge: 128, max: 64 }); // the pinned item's image
  const ev = listeners(model);
  const xScale = linearScale([-1, 1]);
  const yScale = linearScale([-1, 1]);
  const overlay = new MapOverlay(body, canvas, { pointSize: () => basePointSize(n()),
    colorOf: (i) => (model.get("_palette") || [])[codes[i] || 0] || "#888888" });
  overlay.setFocus(model.get("_focus"));
  overlay.setHighlight(toUint32(model.get("_highlight")));

  body.style.height = `${model.get("height")}px`;

  // all points (new coordinates) or, with `recolor`, new colour codes (in place:
  // lib/map_points.js); one draw at a time (regl-scatterplot drops a draw while drawing)
  let drawing = Promise.resolve();
  function drawPoints({ recolor = false, ...opts } = {}) {
    const next = drawing.catch(() => {}).then(() => {
      const reuse = recolor && pts !== null && pts.length === n();
      if (reuse && recolorInPlace(scatter, motion, codes, n())) return undefined;
      if (reuse) recodePoints(pts, codes);
      else pts = buildPoints(coords, codes, n());
      return drawAll(scatter, pts, codes, { sameCoords: reuse, ...opts });
    });
    drawing = next;
    return next;
  }

  async function fitView() {
    const reserve = legend.offsetWidth ? legend.offsetWidth + 16 : 0;
    const rect = scatter && fitRect(coords, body.clientWidth, body.clientHeight, reserve);
    if (rect) await scatter.zoomToArea(rect);
  }

  function themeColors() {
    const accent = resolveColor(root, "--jp-brand-color1", "#1976d2");
    return {
      backgroundColor: resolveColor(root, "--jp-layout-color0", "#ffffff"),
      lassoColor: accent,
      pointColorActive: accent,
      pointColorHover: resolveColor(root, "--jp-ui-font-color0", "#000000"),
    };
  }

  function syncView() {
    model.set("_view", [...xScale.domain(), ...yScale.domain()]);
    model.save_changes();
  }
  let viewTimer = null;

  async function create(width, height) {
    gl = mapRenderer(width, height, motion);
    scatter = createScatterplot({
      renderer: gl.renderer, canvas, width, height, xScale, yScale,
      pointSize: [0.75, 1.2].map((f) => f * basePointSize(n())),
      sizeBy: "valueB",
      pointSizeSelected: 1,
      pointOutlineWidth: 1.5,
      opacity: n() > 50000 ? 0.8 : [0.5, 0.95],
      opacityBy: n() > 50000 ? "density" : "valueB",
      opacityInactiveScale: 0.55,
      colorBy: "valueA",
      pointColor: model.get("_palette"),
      lassoOnLongPress: true,
      lassoMinDelay: 8,
      deselectOnEscape: false,
      deselectOnDblClick: true,
      actionKeyMap: { lasso: "shift", merge: isMac ? "cmd" : "ctrl", remove: "alt" },
      ...largeOptions(n()),
      ...themeColors(),
    });
    scatter.subscribe("lassoStart", () => { lassoing = true; });
    scatter.subscribe("lassoEnd", () => { lassoing = false; sentLasso = null; });
    scatter.subscribe("lassoExtend", () => motion.touch({ lowRes: false }));
    Object.assign(root, { dfwScatter: scatter, dfwMotion: motion }); // for probes; not an API
    unLasso = fastLasso(scatter, { coords: () => coords, n, current: () => selected, send: sendSelection,
      mergeKey: isMac ? "metaKey" : "ctrlKey", stats: root.dataset });
    scatter.subscribe("select", ({ points: pts }) => onSelect(Array.from(pts)));
    scatter.subscribe("deselect", () => onSelect([]));
    scatter.subscribe("pointover", (i) => showTip(i));
    scatter.subscribe("pointout", () => hideTip());
    scatter.subscribe("view", () => {
      motion.touch();
      if (tip.style.display !== "none" && hovered >= 0) placeTip(hovered);
      clearTimeout(viewTimer);
      viewTimer = setTimeout(syncView, 150);
      overlay.redraw();
    });
    scatter.subscribe("transitionEnd", () => overlay.redraw());
    await drawPoints();
    await fitView().catch(() => {});
    if (selected.length) scatter.select(selected, { preventEvent: true });
    drawn = true;
    root.dataset.drawn = "true";
    overlay.attach(scatter);
    syncView();
  }

  const ro = new ResizeObserver(() => {
    const w = body.clientWidth;
    const hgt = body.clientHeight;
    if (w < 10 || hgt < 10) return;
    if (!scatter) create(w, hgt);
    else { gl.resize(w, hgt); scatter.set({ width: w, height: hgt }); }
    if (drawn && !userView) fitView().catch(() => {}); // until the user pans or zooms
    overlay.redraw();
  });
  ro.observe(body);

  // ---- selection -------------------------------------------------------------------
  function onSelect(pts) {
    if (!lassoing && pts.length === 1 && !pointerMods.add && !pointerMods.remove) {
      // a plain click on a point pins it and keeps the selection as it was
      setPinned(pts[0]);
      if (selected.length) scatter.select(selected, { preventEvent: true });
      else scatter.deselect({ preventEvent: true });
      return;
    }
    lassoing = false;
    // sorted as sent, so the echo in "change:_selected" is equal and does not re-select
    // (a second regl-scatterplot select() of every point: seconds at 1M)
    const bytes = indicesToBytes(pts);
    const sent = sentLasso;
    sentLasso = null;
    if (sent && sameIndices(toUint32(bytes), sent)) return; // sent at mouse-up already
    sendSelection(toUint32(bytes));
  }

  // ascending Uint32Array in a message (a sync waits for the last sync's reply); echo: no-op
  function sendSelection(indices) {
    if (lassoing) sentLasso = indices;
    selected = Array.from(indices);
    const bits = indices.length * 32 > n(); // a bit mask is smaller (lib/map_lasso.js)
    model.send({ type: "select", bits }, undefined, [toBytes(bits ? packBits(indices, n()) : indices)]);
    updateSelCount();
  }

  function clearSelection() {
    if (scatter) scatter.deselect({ preventEvent: true });
    onSelect([]);
  }

  function updateSelCount() {
    const k = selected.length;
    if (k && msg.dataset.kind === "error") showMessage(msg, help, "info"); // the mistake is fixed
    selCount.textContent = k ? `${fmt(k)} selected` : "no selection";
    clearBtn.disabled = k === 0;
  }

  let userView = false; // the user moved the view: resizes keep it
  canvas.addEventListener("wheel", () => { userView = true; motion.touch(); }, { passive: true });
  let dragging = false; // a drag that began on the map moves the view (or draws a lasso)
  canvas.addEventListener("mousedown", () => { dragging = true; if (hovered >= 0) hideTip(); });
  const onMove = (e) => { if (dragging && e.buttons) motion.touch(); else dragging = false; };
  window.addEventListener("mousemove", onMove, { passive: true });
  canvas.addEventListener("pointerdown", (e) => {
    if (modeBtns.pan.getAttribute("aria-pressed") === "true") userView = true;
    pointerMods = { add: isMac ? e.metaKey : e.ctrlKey, remove: e.altKey };
  });

  function setMode(mode) {
    for (const [m, b] of Object.entries(modeBtns)) b.setAttribute("aria-pressed", String(m === mode));
    if (!scatter) { pendingMode = mode; return; }
    scatter.set({
      mouseMode: mode === "pan" ? "panZoom" : "lasso",
      lassoType: mode === "box" ? "rectangle" : "lasso",
    });
  }
  let pendingMode = null;

  root.addEventListener("keydown", (e) => {
    if (e.target instanceof HTMLInputElement || e.target instanceof HTMLSelectElement) return;
    if (e.key === "Escape") { clearSelection(); setPinned(-1); }
    else if (e.key === "l" || e.key === "L") setMode("lasso");
    else if (e.key === "b" || e.key === "B") setMode("box");
    else if (e.key === "p" || e.key === "P") setMode("pan");
  });

  // ---- labeling ------------------------------------------------------------------
  function applyLabel() {
    const label = labelInput.value.trim();
    model.send({ type: "label_selection", label });
  }

  // ---- hover & pin -------------------------------------------------------------------
  async function getInfo(i) {
    if (!info.has(i)) {
      info.set(i, request(model, { type: "info", index: i }).then(({ content }) => content)
        .catch((err) => { info.delete(i); throw err; }));
    }
    return info.get(i);
  }

  function placeTip(i) {
    place(tip, body, scatter.getScreenPosition(i));
  }

  function showTip(i) {
    hovered = i;
    if (dragging) return; // no tooltip (layout, thumbnail request) for each point passed while panning
    tip.style.display = "flex";
    fillIndex(tipInfo, i);
    placeTip(i);
    thumbs.get([i]).then(([e]) => {
      if (e && hovered === i) tipThumb.src = e.url;
      thumbs.prune(new Set([i]));
    }).catch(() => {});
    getInfo(i).then((d) => { if (hovered === i) { fillInfo(tipInfo, d); placeTip(i); } })
      .catch(() => {});
  }
  function hideTip() { hovered = -1; tip.style.display = "none"; tipThumb.removeAttribute("src"); }

  function setPinned(i) {
    if (model.get("pinned") !== i) { model.set("pinned", i); model.save_changes(); }
    showPin(i);
  }
  function showPin(i) {
    if (i < 0) { pin.style.display = "none"; return; }
    pin.style.display = "flex";
    fillIndex(pinInfo, i);
    getInfo(i).then((d) => { if (model.get("pinned") === i) fillInfo(pinInfo, d); }).catch(() => {});
    images.get([i]).then(([e]) => {
      if (e && model.get("pinned") === i) pinImg.src = e.url;
      images.prune(new Set([i]));
    }).catch(() => {});
  }

  // ---- legend ----------------------------------------------------------------------
  function renderLegend() {
    drawLegend(legend, model.get("_legend"), model.get("_palette") || [], { focus: model.get("_focus"), highlighted: toUint32(model.get("_highlight")).length });
  }

  function renderClasses() {
    datalist.replaceChildren(...(model.get("_classes") || []).map((c) => h("option", { value: c })));
  }

  function renderStatus() {
    const error = model.get("_layout_error") || "";
    status.textContent = statusText(n(), model.get("_layout_method"), error);
    status.title = status.textContent;
    status.dataset.kind = error ? "error" : "info";
  }

  function renderMessage() {
    const m = model.get("_message") || {};
    clearTimeout(helpTimer);
    if (!m.text) { showMessage(msg, help, "info"); return; }
    showMessage(msg, m.text, m.kind || "info");
    if (m.undo) {
      msg.append(h("button", { class: "dfw-btn", onclick: () => model.send({ type: "undo_bulk" }) }, "Undo"));
    }
    if (m.kind !== "error") helpTimer = setTimeout(() => showMessage(msg, help, "info"), 15000);
  }

  // ---- Python -> JS ----------------------------------------------------------------
  ev.on("change:_coords", () => {
    coords = toFloat32(model.get("_coords"));
    info.clear();
    if (drawn) drawPoints({ transition: true, transitionDuration: 1200, preventFilterReset: true,
      select: selected }).then(() => { userView = false; return fitView(); }).catch(() => {});
    renderStatus();
  });
  ev.on("change:_layout_method", renderStatus);
  ev.on("change:_layout_error", renderStatus);
  ev.on("change:_color_codes", () => {
    codes = toUint8(model.get("_color_codes"));
    info.clear();
    if (drawn) drawPoints({ recolor: true, preventFilterReset: true, select: selected })
      .then(() => { root.dataset.recolored = String(++recolors); }).catch(() => {});
    overlay.redraw();
  });
  ev.on("change:_palette", () => {
    if (scatter) scatter.set({ pointColor: model.get("_palette") });
    renderLegend();
    overlay.redraw();
  });
  ev.on("change:_legend", renderLegend);
  ev.on("change:_classes", renderClasses);
  ev.on("change:_message", renderMessage);
  ev.on("change:_color_by_name", () => { colorSelect.value = model.get("_color_by_name"); });
  ev.on("change:pinned", () => showPin(model.get("pinned")));
  ev.on("change:_focus", () => { overlay.setFocus(model.get("_focus")); renderLegend(); });
  ev.on("change:_highlight", () => { overlay.setHighlight(toUint32(model.get("_highlight"))); renderLegend(); });
  ev.on("change:height", () => { body.style.height = `${model.get("height")}px`; });
  ev.on("change:_selected", () => {
    const next = Array.from(toUint32(model.get("_selected")));
    if (next.length === selected.length && next.every((v, k) => v === selected[k])) return;
    selected = next;
    if (scatter && drawn) {
      if (selected.length) scatter.select(selected, { preventEvent: true });
      else scatter.deselect({ preventEvent: true });
    }
    updateSelCount();
  });
  ev.on("msg:custom", (m) => {
    if (m && m.type === "labels_applied") labelInput.value = "";
    if (m && m.type === "invalidate") info.clear();
  });

  const applyTheme = () => { if (scatter) scatter.set(themeColors()); overlay.redraw(); };
  // theme CSS may load after the theme attribute flips: apply now and once it has settled
  const offTheme = onThemeChange(() => { applyTheme(); setTimeout(applyTheme, 300); setTimeout(applyTheme, 1200); });

  colorSelect.value = model.get("_color_by_name");
  setMode("pan");
  renderLegend();
  renderClasses();
  renderStatus();
  renderMessage();
  updateSelCount();
  const modeTimer = setInterval(() => {
    if (scatter && pendingMode) { setMode(pendingMode); pendingMode = null; }
    if (scatter) clearInterval(modeTimer);
  }, 100);

  return () => {
    clearInterval(modeTimer);
    window.removeEventListener("mousemove", onMove);
    motion.destroy();
    unLasso();
    clearTimeout(viewTimer);
    clearTimeout(helpTimer);
    ro.disconnect();
    offTheme();
    ev.off();
    unIsolate();
    images.clear();
    thumbs.clear();
    overlay.destroy();
    if (scatter) scatter.destroy();
    if (gl) gl.destroy();
  };
}

export default { render };
