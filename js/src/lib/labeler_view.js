// Drawing of the Labeler (js/src/labeler.js holds its state and actions): the DOM
// skeleton, status line, class buttons, help line, the stage (single / review) and the
// grid. Every function takes the view `v` made by labeler.js.
import { h } from "./style.js";

export const MODES = [
  ["single", "Single"],
  ["grid", "Grid"],
  ["review", "Review"],
];

const pct = (x) => `${Math.round(100 * x)}%`;
const keepFocus = (e) => e.preventDefault(); // a button press keeps the keys on the root

function button(attrs, ...children) {
  const b = h("button", { type: "button", ...attrs }, ...children);
  b.tabIndex = -1;
  b.addEventListener("mousedown", keepFocus);
  return b;
}

/** The widget's elements (nothing drawn yet). */
export function skeleton() {
  const tabButtons = {};
  const tabs = h("div", { class: "dfw-lab-tabs", role: "tablist" },
    MODES.map(([mode, title]) => (tabButtons[mode] = button({ "data-mode": mode, text: title }))));
  const status = h("div", { class: "dfw-lab-status", "aria-live": "polite" });
  const focusHint = h("span", { class: "dfw-lab-focus" });
  const restrictBtn = button({ class: "dfw-lab-restrict", "aria-pressed": "false" });
  const restrict = h("span", { class: "dfw-lab-restrict-wrap" }, restrictBtn); // a title also when disabled
  const stage = h("div", { class: "dfw-lab-stage" });
  const side = h("div", { class: "dfw-lab-side" });
  const gridEl = h("div", { class: "dfw-lab-grid" });
  const body = h("div", { class: "dfw-lab-body" });
  const classesEl = h("div", { class: "dfw-lab-classes" });
  const skipBtn = button({ title: "Skip (space or s)" }, "Skip ", h("kbd", { text: "space" }));
  const undoBtn = button({ title: "Undo (z or Backspace)" }, "Undo ", h("kbd", { text: "z" }));
  const confirmBtn = button({ title: "Keep the given label (Enter)" }, "Keep label ", h("kbd", { text: "Enter" }));
  const actions = h("div", { class: "dfw-lab-actions" }, skipBtn, undoBtn, confirmBtn);
  const bulkSelect = h("select", { "aria-label": "class for all remaining items" });
  const bulkBtn = button({ text: "Apply" });
  const bulk = h("span", { class: "dfw-lab-bulk" }, "All remaining as", bulkSelect, bulkBtn);
  const addInput = h("input", { type: "text", placeholder: "new class name", "aria-label": "new class name", size: "14" });
  const addBtn = button({ text: "+ class" });
  const help = h("span", { class: "dfw-lab-help" });
  const msg = h("div", { class: "dfw-lab-msg", role: "status" });
  const root = h("div", { class: "dfw-root dfw-labeler" },
    h("div", { class: "dfw-lab-top" }, tabs, restrict, status, focusHint),
    body, classesEl,
    h("div", { class: "dfw-lab-bottom" }, bulk, h("span", { class: "dfw-lab-add" }, addInput, addBtn), help),
    msg);
  return { root, tabButtons, restrict, restrictBtn, status, focusHint, stage, side, gridEl, body, classesEl, actions,
    skipBtn, undoBtn, confirmBtn, bulk, bulkSelect, bulkBtn, addInput, addBtn, help, msg };
}

export const mode = (v) => v.model.get("mode");
export const classes = (v) => v.model.get("classes") || [];
export const keys = (v) => v.model.get("class_keys") || [];

/** The queue of the current mode without the items answered here (waiting for acks). */
export function visible(v) {
  const src = mode(v) === "review" ? v.model.get("review_queue") : v.model.get("queue");
  return (src || []).filter((i) => !v.hidden.has(i));
}

export function showMessage(v, text, isError = false) {
  v.dom.msg.textContent = text || "";
  v.dom.msg.classList.toggle("dfw-err", !!isError);
}

export function drawStatus(v) {
  const s = v.model.get("status") || {};
  const parts = [h("span", {}, h("b", { text: String(s.labeled ?? 0) }), " labeled")];
  const a = s.accuracy;
  if (a && a.estimate != null) {
    const range = a.low != null && a.high != null ? ` (${pct(a.low)}–${pct(a.high)}, ${a.n} audited)` : "";
    parts.push(h("span", { title: "estimated accuracy on the unlabeled items: the model's confidence, checked against the random audit answers; 95% interval" }, "est. accuracy ", h("b", { text: pct(a.estimate) }), range));
  } else {
    parts.push(h("span", { title: "needs a model: label items of at least two classes" }, "est. accuracy —"));
  }
  parts.push(h("span", {}, h("b", { text: s.per_minute != null ? String(s.per_minute) : "—" }), " labels/min"));
  parts.push(h("span", {}, h("b", { text: s.issues != null ? String(s.issues) : "—" }), " suspected errors"));
  const busy = v.model.get("busy");
  if (busy) parts.push(h("span", { class: "dfw-lab-none", text: `${busy}…` }));
  if (s.fit_error) parts.push(h("span", { class: "dfw-err", style: "color: var(--dfw-error, #d32f2f); font-weight: 600",
    text: `The model fit failed: ${s.fit_error}` }));
  v.dom.status.replaceChildren(...parts);
  v.dom.tabButtons.review.textContent = s.issues ? `Review (${s.issues})` : "Review";
}

/** The "Only the selection (N)" toggle: the Session's selection size; off and disabled
 * while nothing is selected. */
export function drawRestrict(v) {
  const n = v.model.get("selection_size") || 0;
  const on = !!v.model.get("restrict_to_selection");
  const b = v.dom.restrictBtn;
  b.textContent = `${on ? "✓ " : ""}Only the selection (${n.toLocaleString("en-US")})`;
  b.setAttribute("aria-pressed", String(on));
  b.classList.toggle("dfw-on", on);
  b.disabled = !on && n === 0;
  v.dom.restrict.title = b.disabled ? "Select items on the map first (Shift+drag draws a lasso)"
    : on ? "Labeling only the selected items; click to label from all items"
      : `Label only the ${n.toLocaleString("en-US")} selected items`;
}

function topGuess(v) {
  if (mode(v) === "grid" || v.shown == null) return null;
  const g = (v.images.facts.get(v.shown) || {}).guesses;
  return g && g.length ? g[0][0] : null;
}

export function drawClasses(v) {
  const ks = keys(v);
  const names = classes(v);
  const top = topGuess(v);
  v.dom.classesEl.replaceChildren(...names.map((name, j) => {
    const b = button({ "data-class": name, title: ks[j] ? `label as ${name} (${ks[j]})` : `label as ${name}` });
    if (ks[j]) b.append(h("kbd", { text: ks[j] }));
    b.append(name);
    if (name === top) b.classList.add("dfw-top");
    b.addEventListener("click", () => v.answerClass(name, ks[j] || null));
    return b;
  }));
  if (!names.length) v.dom.classesEl.append(h("span", { class: "dfw-lab-none", text: "No classes yet: add one below." }));
  const sel = v.dom.bulkSelect;
  const prev = sel.value;
  sel.replaceChildren(...names.map((n) => h("option", { value: n, text: n })));
  if (names.includes(prev)) sel.value = prev;
}

export function drawHelp(v) {
  const m = mode(v);
  const ks = keys(v);
  const nk = ks.filter((k) => k).length;
  const first = ks[0] || "1";
  const last = ks[Math.max(0, nk - 1)] || "0";
  let text = `${first}–${last} label · space/s skip · z/Backspace undo`;
  if (m === "grid") text = `click to select · ←↑→↓ move · ${first}–${last} label · space skip · z undo`;
  if (m === "review") text = `Enter keeps the label · ${first}–${last} corrects · space skips`;
  v.dom.help.textContent = text;
  v.dom.bulk.style.display = m === "grid" ? "" : "none";
  v.dom.confirmBtn.style.display = m === "review" ? "" : "none";
  v.dom.undoBtn.style.display = m === "review" ? "none" : "";
}

const empty = (text) => h("div", { class: "dfw-lab-empty", text });
const doneText = (v) => (v.model.get("restrict_to_selection")
  ? "No unlabeled item is left in the selection." : "Everything is labeled.");

/** Show the first visible item on the stage: at once when its image is decoded. */
export function drawStage(v) {
  const { stage } = v.dom;
  const m = mode(v);
  const size = v.model.get("image_size") || 224;
  const q = visible(v);
  const idx = q.length ? q[0] : null;
  stage.style.width = `${size}px`;
  stage.style.height = `${size}px`;
  if (idx === null) {
    v.shown = null;
    const raw = (m === "review" ? v.model.get("review_queue") : v.model.get("queue")) || [];
    if (raw.length) {
      // every queued item is an answer still in flight: wait for Python's queue
      stage.replaceChildren(empty("saving…"));
      return;
    }
    delete stage.dataset.index;
    stage.replaceChildren(empty(m === "review" ? "No suspected errors to review." : doneText(v)));
    drawSide(v, null);
    return;
  }
  const entry = v.images.get(idx);
  if (!entry) {
    if (v.images.failed.has(idx)) { // still labelable: say so instead of an image
      v.shown = idx;
      stage.dataset.index = String(idx);
      stage.replaceChildren(empty(`the image of item ${idx} could not be read`));
      drawSide(v, idx);
      return;
    }
    v.shown = null;
    stage.replaceChildren(empty("loading…"));
    drawSide(v, null);
    return;
  }
  const swap = () => {
    if (visible(v)[0] !== idx) return; // moved on meanwhile
    const img = entry.img;
    img.style.width = `${size}px`;
    img.style.height = `${size}px`;
    img.classList.toggle("dfw-pixelated", img.naturalWidth > 0 && img.naturalWidth * 2 <= size);
    if (stage.firstChild !== img) stage.replaceChildren(img);
    v.shown = idx;
    stage.dataset.index = String(idx);
    drawSide(v, idx);
    drawClasses(v);
  };
  if (entry.decoded) swap();
  else entry.ready.then(swap);
}

function drawSide(v, idx) {
  const facts = idx == null ? null : v.images.facts.get(idx) || {};
  const parts = [];
  if (mode(v) === "review") {
    parts.push(h("div", { class: "dfw-lab-h", text: "Suspected label error" }));
    if (facts && facts.given) {
      parts.push(h("div", { class: "dfw-lab-review" }, "Labeled ", h("b", { text: facts.given }),
        "; the model suggests ", h("b", { text: facts.suggested })));
    }
  }
  parts.push(h("div", { class: "dfw-lab-h", text: "Model's top guesses" }));
  const guesses = facts && facts.guesses;
  if (guesses && guesses.length) {
    const ks = keys(v);
    const names = classes(v);
    for (const [name, p] of guesses) {
      const j = names.indexOf(name);
      parts.push(h("div", { class: "dfw-lab-guess" },
        ks[j] ? h("kbd", { text: ks[j] }) : h("span"),
        h("div", { class: "dfw-lab-bar" }, h("span", { style: `width:${Math.round(100 * p)}%` }), h("em", { text: name })),
        h("span", { class: "dfw-lab-pct", text: pct(p) })));
    }
  } else {
    parts.push(h("div", { class: "dfw-lab-none", text: facts ? "no model yet: the first items are chosen for diversity" : "" }));
  }
  parts.push(v.dom.actions);
  v.dom.side.replaceChildren(...parts);
}

// ------------------------------------------------------------------------ grid
export function newPage(v) {
  const size = v.model.get("page_size") || 24;
  v.grid = { page: visible(v).slice(0, size), marks: new Map(), cursor: 0, selected: new Set() };
}

export function gridColumns(v) {
  const cells = v.dom.gridEl.children;
  if (cells.length < 2) return 1;
  const y0 = cells[0].offsetTop;
  let n = 0;
  while (n < cells.length && cells[n].offsetTop === y0) n++;
  return Math.max(1, n);
}

export function drawGrid(v) {
  const { gridEl } = v.dom;
  if (!v.grid.page.length || v.grid.page.every((i) => v.grid.marks.has(i))) newPage(v);
  const grid = v.grid;
  const live = new Set(v.model.get("queue") || []);
  // items that got labeled elsewhere leave the page
  grid.page = grid.page.filter((i) => live.has(i) || grid.marks.has(i));
  if (!grid.page.length) newPage(v);
  if (!v.grid.page.length) {
    gridEl.replaceChildren(empty(doneText(v)));
    return;
  }
  const g = v.grid;
  g.cursor = Math.min(g.cursor, g.page.length - 1);
  gridEl.replaceChildren(...g.page.map((i, pos) => {
    const cell = h("div", { class: "dfw-lab-cell", "data-index": String(i), title: `item ${i}` });
    cell.append(v.images.thumb(i) || empty("…"));
    const mark = g.marks.get(i);
    const facts = v.images.facts.get(i);
    if (mark) {
      cell.classList.add("dfw-done");
      cell.append(h("div", { class: mark.skip ? "dfw-badge dfw-skip" : "dfw-badge", text: mark.skip ? "skipped" : mark.label }));
    } else if (facts && facts.guesses && facts.guesses.length) {
      const [name, p] = facts.guesses[0];
      cell.append(h("div", { class: "dfw-guess", text: `${name} ${pct(p)}` }));
    }
    if (pos === g.cursor) cell.classList.add("dfw-cursor");
    if (g.selected.has(i)) cell.classList.add("dfw-sel");
    cell.addEventListener("mousedown", keepFocus);
    cell.addEventListener("click", () => {
      g.cursor = pos;
      if (g.selected.has(i)) g.selected.delete(i);
      else g.selected.add(i);
      v.dom.root.focus({ preventScroll: true });
      drawGrid(v);
    });
    return cell;
  }));
}

/** True when a grid cell on the page still waits for its image. */
export function gridMissesImages(v) {
  return v.grid.page.some((i) => !v.images.get(i) && !v.images.failed.has(i));
}
