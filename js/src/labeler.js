// Labeler widget view (anywidget). Keyboard first and optimistic: the images of the
// queued items are fetched (lib/images.js, binary buffers) and decoded ahead of time, so
// a key press shows the next item at once and sends the answer; Python commits it to the
// store in message order and acknowledges it, or reports an error and the item comes back.
import { injectStyle } from "./lib/style.js";
import { isolateKeys } from "./lib/keyboard.js";
import { listeners } from "./lib/events.js";
import { labelerCss, LABELER_CSS_ID } from "./lib/labeler_style.js";
import { LabelerImages } from "./lib/labeler_images.js";
import { keyAction } from "./lib/labeler_keys.js";
import { drawIssues, issueItems, ISSUES_CSS } from "./lib/labeler_issues.js";
import {
  skeleton, mode, classes, keys, visible, showMessage, drawStatus, drawClasses, drawHelp, drawRestrict,
  drawStage, newPage, gridColumns, drawGrid, gridMissesImages,
} from "./lib/labeler_view.js";

const PRELOAD = 48; // images fetched ahead from the current mode's queue
const PRELOAD_OTHER = 16; // ... and from the other queue (review <-> label)

function render({ model, el }) {
  injectStyle(LABELER_CSS_ID, labelerCss);
  injectStyle(`${LABELER_CSS_ID}-issues`, ISSUES_CSS);
  const viewId = Math.random().toString(36).slice(2, 8);
  let seqCounter = 0;
  const nextSeq = () => `${viewId}:${++seqCounter}`;
  const dom = skeleton();
  const { root } = dom;
  const v = {
    model, dom,
    images: new LabelerImages(model, { edge: model.get("image_size") || 224 }),
    hidden: new Set(), // answered/skipped here, waiting for Python's ack
    pending: new Map(), // seq -> indices
    shown: null, // index on the stage (single / review)
    grid: { page: [], marks: new Map(), cursor: 0, selected: new Set() },
    answerClass: (name, key) => answerClass(name, key),
  };
  const issuesEl = document.createElement("div"); // review mode: the data-issue report
  issuesEl.className = "dfw-lab-issues";
  dom.body.before(issuesEl);
  const unIsolate = isolateKeys(root);
  el.append(root);
  const send = (content) => model.send(content);

  // ------------------------------------------------------------- preloading
  let alive = true;
  function preload() {
    const queue = model.get("queue") || [];
    const review = model.get("review_queue") || [];
    const [first, other] = mode(v) === "review" ? [[...issueItems(model), ...review], queue] : [queue, review];
    const want = [...new Set([...v.grid.page, ...first.slice(0, PRELOAD), ...other.slice(0, PRELOAD_OTHER)])]
      .filter((i) => !v.hidden.has(i) || v.grid.page.includes(i));
    v.images.load(want).then(() => {
      if (!alive) return;
      if (mode(v) === "review") drawIssues(v, issuesEl, send);
      if (mode(v) === "grid") {
        if (gridMissesImages(v) || dom.gridEl.querySelector(".dfw-lab-empty")) drawGrid(v);
      } else if (v.shown == null || v.shown !== visible(v)[0]) {
        drawStage(v);
      }
    }, (err) => { if (alive) showMessage(v, `Could not load images: ${err.message}`, true); });
  }

  // ------------------------------------------------------------- actions
  function track(indices, content) {
    const seq = nextSeq();
    // optimistic: move on now; otherwise wait until Python's queue moves (round trip)
    if (model.get("optimistic") || mode(v) === "grid") for (const i of indices) v.hidden.add(i);
    v.pending.set(seq, indices);
    send({ ...content, seq, indices });
  }

  function gridTargets() {
    if (v.grid.selected.size) return [...v.grid.selected];
    const i = v.grid.page[v.grid.cursor];
    return i === undefined ? [] : [i];
  }

  function gridAdvanceCursor() {
    const g = v.grid;
    for (let step = 1; step <= g.page.length; step++) {
      const pos = (g.cursor + step) % g.page.length;
      if (!g.marks.has(g.page[pos])) {
        g.cursor = pos;
        return;
      }
    }
  }

  function markGrid(mark, content) {
    const targets = gridTargets();
    if (!targets.length) return;
    for (const i of targets) v.grid.marks.set(i, mark);
    v.grid.selected.clear();
    gridAdvanceCursor();
    track(targets, content);
    drawGrid(v);
  }

  const waiting = () => v.shown == null || (!model.get("optimistic") && v.pending.size);

  function answerClass(name, key) {
    const m = mode(v);
    const content = key ? { type: "key", key } : { type: "label", label: name, source: m === "review" ? "review" : "click" };
    if (m === "grid") return markGrid({ label: name }, key ? content : { ...content, source: "click" });
    if (waiting()) return;
    track([v.shown], content);
    drawStage(v);
  }

  function skip(key) {
    if (mode(v) === "grid") return markGrid({ skip: true }, { type: "key", key });
    if (waiting()) return;
    track([v.shown], { type: "key", key });
    drawStage(v);
  }

  function undo() {
    if (mode(v) === "review") {
      showMessage(v, "Undo works in the single and grid views; in review, press the right class key.");
      return;
    }
    send({ type: "undo", seq: nextSeq() });
  }

  function confirmReview() {
    if (mode(v) !== "review" || v.shown == null) return;
    track([v.shown], { type: "key", key: "Enter" });
    drawStage(v);
  }

  function bulkLabel() {
    const name = dom.bulkSelect.value;
    if (!name) return showMessage(v, "Add a class first.", true);
    const rest = v.grid.page.filter((i) => !v.grid.marks.has(i));
    if (!rest.length) return showMessage(v, "Every item on this page is already answered.");
    for (const i of rest) v.grid.marks.set(i, { label: name });
    track(rest, { type: "label", label: name, source: "bulk" });
    drawGrid(v);
  }

  function addClass() {
    send({ type: "add_class", name: dom.addInput.value });
    dom.addInput.value = "";
    root.focus({ preventScroll: true });
  }

  for (const [m, b] of Object.entries(dom.tabButtons)) {
    b.addEventListener("click", () => { model.set("mode", m); model.save_changes(); });
  }
  dom.restrictBtn.addEventListener("click", () => {
    model.set("restrict_to_selection", !model.get("restrict_to_selection"));
    model.save_changes();
  });
  dom.skipBtn.addEventListener("click", () => skip("s"));
  dom.undoBtn.addEventListener("click", undo);
  dom.confirmBtn.addEventListener("click", confirmReview);
  dom.bulkBtn.addEventListener("click", bulkLabel);
  dom.addBtn.addEventListener("click", addClass);
  dom.addInput.addEventListener("keydown", (e) => {
    if (e.key === "Enter") {
      e.preventDefault();
      addClass();
    } else if (e.key === "Escape") root.focus({ preventScroll: true });
  });

  root.addEventListener("keydown", (e) => {
    const act = keyAction(e, keys(v), classes(v));
    if (!act) return;
    e.preventDefault();
    switch (act.kind) {
      case "class": return answerClass(act.cls, act.key);
      case "skip": return skip(act.key);
      case "undo": return undo();
      case "confirm": return confirmReview();
      case "move": {
        const g = v.grid;
        if (mode(v) !== "grid" || !g.page.length) return;
        g.cursor = Math.max(0, Math.min(g.page.length - 1, g.cursor + act.dx + act.dy * gridColumns(v)));
        return drawGrid(v);
      }
      default: return;
    }
  });
  root.addEventListener("mousedown", (e) => {
    const tag = e.target.tagName;
    if (tag !== "INPUT" && tag !== "SELECT") setTimeout(() => root.focus({ preventScroll: true }), 0);
  });
  const hint = (text) => () => (dom.focusHint.textContent = text);
  root.addEventListener("focus", hint("keys active"));
  root.addEventListener("blur", hint("click here to use the keys"));
  dom.focusHint.textContent = "click here to use the keys";

  // ----------------------------------------------------------- messages
  function onCustom(content) {
    switch (content.type) {
      case "items":
      case "guesses":
        v.images.putFacts(content.items);
        break;
      case "ack":
        if (v.pending.has(content.seq)) {
          for (const i of v.pending.get(content.seq)) v.hidden.delete(i);
          v.pending.delete(content.seq);
        }
        return; // the queue trait already moved on
      case "error":
        if (v.pending.has(content.seq)) {
          for (const i of v.pending.get(content.seq)) {
            v.hidden.delete(i);
            v.grid.marks.delete(i);
          }
          v.pending.delete(content.seq);
        }
        showMessage(v, content.message, true);
        break;
      case "undone":
        for (const i of content.indices || []) {
          v.hidden.delete(i);
          v.grid.marks.delete(i);
        }
        if (mode(v) === "grid") {
          const pos = v.grid.page.indexOf((content.indices || [])[0]);
          if (pos >= 0) v.grid.cursor = pos;
          else newPage(v);
        }
        break;
      default:
        return;
    }
    redraw();
  }

  function redraw() {
    const m = mode(v);
    for (const [mm, b] of Object.entries(dom.tabButtons)) b.classList.toggle("dfw-on", mm === m);
    if (m === "grid") {
      if (dom.body.firstChild !== dom.gridEl) dom.body.replaceChildren(dom.gridEl);
      drawGrid(v);
      drawClasses(v);
    } else {
      if (dom.body.firstChild !== dom.stage) dom.body.replaceChildren(dom.stage, dom.side);
      drawStage(v);
    }
    drawHelp(v);
    if (m === "review") drawIssues(v, issuesEl, send);
    else issuesEl.replaceChildren();
    const keep = new Set([...(model.get("queue") || []), ...(model.get("review_queue") || []), ...v.grid.page,
      ...issueItems(model)]);
    v.images.prune(keep);
  }

  const onQueue = () => { preload(); redraw(); };
  const onMode = () => {
    if (mode(v) === "grid") newPage(v);
    showMessage(v, "");
    preload();
    redraw();
  };
  const onMessage = () => showMessage(v, model.get("message"), model.get("message_level") === "error");
  const onClasses = () => { drawClasses(v); drawHelp(v); };
  const onStatus = () => drawStatus(v);
  const onSize = () => { v.images.store.edge = model.get("image_size") || 224; redraw(); };
  const ev = listeners(model);
  ev.on("msg:custom", onCustom);
  ev.on("change:queue", onQueue);
  ev.on("change:review_queue", onQueue);
  ev.on("change:issue_entries", onQueue);
  ev.on("change:mode", onMode);
  ev.on("change:status", onStatus);
  ev.on("change:busy", onStatus);
  ev.on("change:message", onMessage);
  ev.on("change:message_level", onMessage);
  ev.on("change:classes", onClasses);
  ev.on("change:class_keys", onClasses);
  ev.on("change:image_size", onSize);
  ev.on("change:selection_size", () => drawRestrict(v));
  ev.on("change:restrict_to_selection", () => { drawRestrict(v); redraw(); });

  drawStatus(v);
  drawClasses(v);
  drawRestrict(v);
  onMessage();
  if (mode(v) === "grid") newPage(v);
  preload();
  redraw();
  send({ type: "hello" });
  const raf = requestAnimationFrame(() => root.focus({ preventScroll: true }));

  return () => {
    alive = false;
    cancelAnimationFrame(raf);
    ev.off();
    unIsolate();
    v.images.clear();
  };
}

export default { render };
