// Labeler widget view (anywidget). Keyboard first and optimistic: a key press shows the
// next preloaded image at once and sends the answer; Python commits it to the store in
// message order and acknowledges it, or reports an error and the item comes back.
import { labelerCss } from "./lib/labeler_style.js";
import { ImageCache } from "./lib/labeler_images.js";
import { keyAction } from "./lib/labeler_keys.js";

const MODES = [
  ["single", "Single"],
  ["grid", "Grid"],
  ["review", "Review"],
];

function h(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (k === "class") node.className = v;
    else if (k === "text") node.textContent = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v);
  }
  for (const c of children) if (c != null) node.append(c);
  return node;
}

function pct(x) {
  return `${Math.round(100 * x)}%`;
}

function render({ model, el }) {
  const viewId = Math.random().toString(36).slice(2, 8);
  let seqCounter = 0;
  const nextSeq = () => `${viewId}:${++seqCounter}`;
  const cache = new ImageCache();
  const hidden = new Set(); // answered/skipped here, waiting for Python's ack
  const pending = new Map(); // seq -> indices
  let shown = null; // index on the stage (single / review)
  let measure = null; // {t0} while a key press waits for the next image to be drawn
  let grid = { page: [], marks: new Map(), cursor: 0, selected: new Set() };
  const latencies = [];
  let latencyOut = [];
  globalThis.dfwLabelerLatencies = globalThis.dfwLabelerLatencies || [];

  // ---------------------------------------------------------------- skeleton
  const root = h("div", { class: "dfw-root dfw-labeler", "data-lm-suppress-shortcuts": "true" });
  root.tabIndex = 0;
  root.append(h("style", { text: labelerCss }));
  const tabs = h("div", { class: "dfw-lab-tabs", role: "tablist" });
  const tabButtons = {};
  for (const [mode, title] of MODES) {
    const b = h("button", { type: "button", "data-mode": mode, text: title });
    b.tabIndex = -1;
    b.addEventListener("click", () => {
      model.set("mode", mode);
      model.save_changes();
    });
    tabButtons[mode] = b;
    tabs.append(b);
  }
  const status = h("div", { class: "dfw-lab-status", "aria-live": "polite" });
  const focusHint = h("span", { class: "dfw-lab-focus" });
  const top = h("div", { class: "dfw-lab-top" }, tabs, status, focusHint);

  const stage = h("div", { class: "dfw-lab-stage" });
  const side = h("div", { class: "dfw-lab-side" });
  const gridEl = h("div", { class: "dfw-lab-grid" });
  const body = h("div", { class: "dfw-lab-body" });
  const classesEl = h("div", { class: "dfw-lab-classes" });

  const actions = h("div", { class: "dfw-lab-actions" });
  const skipBtn = h("button", { type: "button", title: "Skip (space or s)" }, "Skip ", h("kbd", { text: "space" }));
  const undoBtn = h("button", { type: "button", title: "Undo (z or Backspace)" }, "Undo ", h("kbd", { text: "z" }));
  const confirmBtn = h("button", { type: "button", title: "Keep the given label (Enter)" }, "Keep label ", h("kbd", { text: "Enter" }));
  actions.append(skipBtn, undoBtn, confirmBtn);

  const bulkSelect = h("select", { "aria-label": "class for all remaining items" });
  const bulkBtn = h("button", { type: "button", text: "Apply" });
  const bulk = h("span", { class: "dfw-lab-bulk" }, "All remaining as", bulkSelect, bulkBtn);
  const addInput = h("input", { type: "text", placeholder: "new class name", "aria-label": "new class name", size: "14" });
  const addBtn = h("button", { type: "button", text: "+ class" });
  const add = h("span", { class: "dfw-lab-add" }, addInput, addBtn);
  const help = h("span", { class: "dfw-lab-help" });
  const bottom = h("div", { class: "dfw-lab-bottom" }, bulk, add, help);
  const msg = h("div", { class: "dfw-lab-msg", role: "status" });
  root.append(top, body, classesEl, bottom, msg);
  el.append(root);

  for (const b of root.querySelectorAll("button")) {
    b.tabIndex = -1;
    b.addEventListener("mousedown", (e) => e.preventDefault()); // keep focus on the root
  }

  // ------------------------------------------------------------------- state
  const mode = () => model.get("mode");
  const classes = () => model.get("classes") || [];
  const keys = () => model.get("class_keys") || [];
  const visible = () => {
    const src = mode() === "review" ? model.get("review_queue") : model.get("queue");
    return (src || []).filter((i) => !hidden.has(i));
  };
  const showMessage = (text, isError = false) => {
    msg.textContent = text || "";
    msg.classList.toggle("dfw-err", !!isError);
  };

  function send(content) {
    model.send(content);
  }

  // ------------------------------------------------------------ measurement
  function markDrawn(index) {
    if (!measure) return;
    const m = measure;
    measure = null;
    requestAnimationFrame(() =>
      setTimeout(() => {
        const ms = performance.now() - m.t0;
        const rec = { ms, index, key: m.key, mode: m.mode };
        latencies.push(rec);
        globalThis.dfwLabelerLatencies.push(rec);
        root.dataset.lastLatency = ms.toFixed(1);
        latencyOut.push(ms);
        if (latencyOut.length >= 5) flushLatency();
      }, 0),
    );
  }
  function flushLatency() {
    if (latencyOut.length) send({ type: "latency", values: latencyOut });
    latencyOut = [];
  }

  // --------------------------------------------------------------- drawing
  function drawStatus() {
    const s = model.get("status") || {};
    const parts = [];
    parts.push(h("span", {}, h("b", { text: String(s.labeled ?? 0) }), " labeled"));
    const a = s.accuracy;
    if (a && a.estimate != null) {
      const range = a.low != null && a.high != null ? ` (${pct(a.low)}–${pct(a.high)}, ${a.n} audited)` : "";
      parts.push(h("span", { title: "estimated accuracy on the unlabeled items: the model's confidence, checked against the random audit answers; 95% interval" }, "est. accuracy ", h("b", { text: pct(a.estimate) }), range));
    } else {
      parts.push(h("span", { title: "needs a model and a few audit answers" }, "est. accuracy —"));
    }
    parts.push(h("span", {}, h("b", { text: s.per_minute != null ? String(s.per_minute) : "—" }), " labels/min"));
    parts.push(h("span", {}, h("b", { text: s.issues != null ? String(s.issues) : "—" }), " suspected errors"));
    const busy = model.get("busy");
    if (busy) parts.push(h("span", { class: "dfw-lab-none", text: `${busy}…` }));
    status.replaceChildren(...parts);
    tabButtons.review.textContent = s.issues ? `Review (${s.issues})` : "Review";
  }

  function drawClasses() {
    const ks = keys();
    const names = classes();
    const topGuess = currentTopGuess();
    classesEl.replaceChildren(
      ...names.map((name, j) => {
        const b = h("button", { type: "button", "data-class": name, title: ks[j] ? `label as ${name} (${ks[j]})` : `label as ${name}` });
        if (ks[j]) b.append(h("kbd", { text: ks[j] }));
        b.append(name);
        if (name === topGuess) b.classList.add("dfw-top");
        b.tabIndex = -1;
        b.addEventListener("mousedown", (e) => e.preventDefault());
        b.addEventListener("click", () => answerClass(name, ks[j] || null));
        return b;
      }),
    );
    if (!names.length) classesEl.append(h("span", { class: "dfw-lab-none", text: "No classes yet: add one below." }));
    const prev = bulkSelect.value;
    bulkSelect.replaceChildren(...names.map((n) => h("option", { value: n, text: n })));
    if (names.includes(prev)) bulkSelect.value = prev;
  }

  function currentTopGuess() {
    if (mode() === "grid") return null;
    const e = shown != null ? cache.get(shown) : null;
    const g = e && e.meta.guesses;
    return g && g.length ? g[0][0] : null;
  }

  function drawHelp() {
    const m = mode();
    const nk = keys().filter((k) => k).length;
    const first = keys()[0] || "1";
    const last = keys()[Math.max(0, nk - 1)] || "0";
    let text = `${first}–${last} label · space/s skip · z/Backspace undo`;
    if (m === "grid") text = `click to select · ←↑→↓ move · ${first}–${last} label · space skip · z undo`;
    if (m === "review") text = `Enter keeps the label · ${first}–${last} corrects · space skips`;
    help.textContent = text;
    bulk.style.display = m === "grid" ? "" : "none";
    confirmBtn.style.display = m === "review" ? "" : "none";
    undoBtn.style.display = m === "review" ? "none" : "";
  }

  function drawStage() {
    const m = mode();
    const size = model.get("image_size") || 224;
    const q = visible();
    const idx = q.length ? q[0] : null;
    stage.style.width = `${size}px`;
    stage.style.height = `${size}px`;
    if (idx === null) {
      const raw = (m === "review" ? model.get("review_queue") : model.get("queue")) || [];
      if (raw.length) {
        // every queued item is an answer still in flight: wait for Python's queue
        stage.replaceChildren(h("div", { class: "dfw-lab-empty", text: "saving…" }));
        shown = null;
        return;
      }
      shown = null;
      delete stage.dataset.index;
      stage.replaceChildren(h("div", { class: "dfw-lab-empty", text: m === "review" ? "No suspected errors to review." : "Everything is labeled." }));
      drawSide(null);
      markDrawn(null);
      return;
    }
    const entry = cache.get(idx);
    if (!entry) {
      shown = null;
      stage.replaceChildren(h("div", { class: "dfw-lab-empty", text: "loading…" }));
      drawSide(null);
      return;
    }
    const swap = () => {
      if (visible()[0] !== idx) return; // moved on meanwhile
      const img = entry.big;
      img.style.width = `${size}px`;
      img.style.height = `${size}px`;
      img.classList.toggle("dfw-pixelated", img.naturalWidth > 0 && img.naturalWidth * 2 <= size);
      if (stage.firstChild !== img) stage.replaceChildren(img);
      shown = idx;
      stage.dataset.index = String(idx);
      drawSide(entry);
      drawClasses();
      markDrawn(idx);
    };
    if (entry.decoded) swap();
    else entry.ready.then(swap);
  }

  function drawSide(entry) {
    const m = mode();
    const parts = [];
    if (m === "review") {
      parts.push(h("div", { class: "dfw-lab-h", text: "Suspected label error" }));
      if (entry && entry.meta.given) {
        parts.push(
          h("div", { class: "dfw-lab-review" }, "Labeled ", h("b", { text: entry.meta.given }), "; the model suggests ", h("b", { text: entry.meta.suggested })),
        );
      }
    }
    parts.push(h("div", { class: "dfw-lab-h", text: "Model's top guesses" }));
    const guesses = entry && entry.meta.guesses;
    if (guesses && guesses.length) {
      const ks = keys();
      const names = classes();
      for (const [name, p] of guesses) {
        const j = names.indexOf(name);
        parts.push(
          h("div", { class: "dfw-lab-guess" },
            ks[j] ? h("kbd", { text: ks[j] }) : h("span"),
            h("div", { class: "dfw-lab-bar" }, h("span", { style: `width:${Math.round(100 * p)}%` }), h("em", { text: name })),
            h("span", { class: "dfw-lab-pct", text: pct(p) }),
          ),
        );
      }
    } else {
      parts.push(h("div", { class: "dfw-lab-none", text: entry ? "no model yet: the first items are chosen for diversity" : "" }));
    }
    parts.push(actions);
    side.replaceChildren(...parts);
  }

  // ---------------------------------------------------------------- grid
  function newPage() {
    const size = model.get("page_size") || 24;
    grid = { page: visible().slice(0, size), marks: new Map(), cursor: 0, selected: new Set() };
  }

  function gridColumns() {
    const cells = gridEl.children;
    if (cells.length < 2) return 1;
    const y0 = cells[0].offsetTop;
    let n = 0;
    while (n < cells.length && cells[n].offsetTop === y0) n++;
    return Math.max(1, n);
  }

  function drawGrid() {
    if (!grid.page.length || grid.page.every((i) => grid.marks.has(i))) newPage();
    const live = new Set(model.get("queue") || []);
    // items that got labeled elsewhere leave the page
    grid.page = grid.page.filter((i) => live.has(i) || grid.marks.has(i));
    if (!grid.page.length) newPage();
    if (!grid.page.length) {
      gridEl.replaceChildren(h("div", { class: "dfw-lab-empty", text: "Everything is labeled." }));
      return;
    }
    grid.cursor = Math.min(grid.cursor, grid.page.length - 1);
    gridEl.replaceChildren(
      ...grid.page.map((i, pos) => {
        const cell = h("div", { class: "dfw-lab-cell", "data-index": String(i), title: `item ${i}` });
        const img = cache.thumb(i);
        if (img) cell.append(img);
        else cell.append(h("div", { class: "dfw-lab-empty", text: "…" }));
        const mark = grid.marks.get(i);
        const e = cache.get(i);
        if (mark) {
          cell.classList.add("dfw-done");
          cell.append(h("div", { class: mark.skip ? "dfw-badge dfw-skip" : "dfw-badge", text: mark.skip ? "skipped" : mark.label }));
        } else if (e && e.meta.guesses && e.meta.guesses.length) {
          const [g, p] = e.meta.guesses[0];
          cell.append(h("div", { class: "dfw-guess", text: `${g} ${pct(p)}` }));
        }
        if (pos === grid.cursor) cell.classList.add("dfw-cursor");
        if (grid.selected.has(i)) cell.classList.add("dfw-sel");
        cell.addEventListener("mousedown", (ev) => ev.preventDefault());
        cell.addEventListener("click", () => {
          grid.cursor = pos;
          if (grid.selected.has(i)) grid.selected.delete(i);
          else grid.selected.add(i);
          root.focus({ preventScroll: true });
          drawGrid();
        });
        return cell;
      }),
    );
  }

  function gridTargets() {
    if (grid.selected.size) return [...grid.selected];
    const i = grid.page[grid.cursor];
    return i === undefined ? [] : [i];
  }

  function gridAdvanceCursor() {
    const n = grid.page.length;
    for (let step = 1; step <= n; step++) {
      const pos = (grid.cursor + step) % n;
      if (!grid.marks.has(grid.page[pos])) {
        grid.cursor = pos;
        return;
      }
    }
  }

  // ------------------------------------------------------------- actions
  function track(indices, content) {
    const seq = nextSeq();
    // optimistic: move on now; otherwise wait until Python's queue moves (round trip)
    if (model.get("optimistic") || mode() === "grid") for (const i of indices) hidden.add(i);
    pending.set(seq, indices);
    send({ ...content, seq, indices });
  }

  function answerClass(name, key) {
    const m = mode();
    if (m === "grid") {
      const targets = gridTargets();
      if (!targets.length) return;
      for (const i of targets) grid.marks.set(i, { label: name });
      grid.selected.clear();
      gridAdvanceCursor();
      track(targets, key ? { type: "key", key } : { type: "label", label: name, source: "click" });
      drawGrid();
      return;
    }
    if (shown == null || (!model.get("optimistic") && pending.size)) return;
    measure = { t0: performance.now(), key: key || "click", mode: m };
    const content = key ? { type: "key", key } : { type: "label", label: name, source: m === "review" ? "review" : "click" };
    track([shown], content);
    drawStage();
  }

  function skip(key) {
    const m = mode();
    if (m === "grid") {
      const targets = gridTargets();
      if (!targets.length) return;
      for (const i of targets) grid.marks.set(i, { skip: true });
      grid.selected.clear();
      gridAdvanceCursor();
      track(targets, { type: "key", key });
      drawGrid();
      return;
    }
    if (shown == null || (!model.get("optimistic") && pending.size)) return;
    measure = { t0: performance.now(), key, mode: m };
    track([shown], { type: "key", key });
    drawStage();
  }

  function undo() {
    if (mode() === "review") {
      showMessage("Undo works in the single and grid views; in review, press the right class key.");
      return;
    }
    send({ type: "undo", seq: nextSeq() });
  }

  function confirmReview() {
    if (mode() !== "review" || shown == null) return;
    measure = { t0: performance.now(), key: "Enter", mode: "review" };
    track([shown], { type: "key", key: "Enter" });
    drawStage();
  }

  function bulkLabel() {
    const name = bulkSelect.value;
    if (!name) return showMessage("Add a class first.", true);
    const rest = grid.page.filter((i) => !grid.marks.has(i));
    if (!rest.length) return showMessage("Every item on this page is already answered.");
    for (const i of rest) grid.marks.set(i, { label: name });
    track(rest, { type: "label", label: name, source: "bulk" });
    drawGrid();
  }

  function addClass() {
    send({ type: "add_class", name: addInput.value });
    addInput.value = "";
    root.focus({ preventScroll: true });
  }

  skipBtn.addEventListener("click", () => skip("s"));
  undoBtn.addEventListener("click", undo);
  confirmBtn.addEventListener("click", confirmReview);
  bulkBtn.addEventListener("click", bulkLabel);
  addBtn.addEventListener("click", addClass);
  addInput.addEventListener("keydown", (e) => {
    e.stopPropagation();
    if (e.key === "Enter") {
      e.preventDefault();
      addClass();
    } else if (e.key === "Escape") root.focus({ preventScroll: true });
  });

  function onKeydown(e) {
    const act = keyAction(e, keys(), classes());
    if (!act) {
      if (!(e.ctrlKey || e.metaKey || e.altKey)) e.stopPropagation();
      return;
    }
    e.preventDefault();
    e.stopPropagation();
    const m = mode();
    switch (act.kind) {
      case "class":
        return answerClass(act.cls, act.key);
      case "skip":
        return skip(act.key);
      case "undo":
        return undo();
      case "confirm":
        return confirmReview();
      case "move":
        if (m !== "grid" || !grid.page.length) return;
        grid.cursor = Math.max(0, Math.min(grid.page.length - 1, grid.cursor + act.dx + act.dy * gridColumns()));
        return drawGrid();
      default:
        return;
    }
  }
  root.addEventListener("keydown", onKeydown);
  root.addEventListener("keyup", (e) => e.stopPropagation());
  root.addEventListener("keypress", (e) => e.stopPropagation());
  root.addEventListener("wheel", (e) => e.stopPropagation());
  root.addEventListener("mousedown", (e) => {
    const tag = e.target.tagName;
    if (tag !== "INPUT" && tag !== "SELECT") setTimeout(() => root.focus({ preventScroll: true }), 0);
  });
  root.addEventListener("focus", () => (focusHint.textContent = "keys active"));
  root.addEventListener("blur", () => (focusHint.textContent = "click here to use the keys"));
  focusHint.textContent = "click here to use the keys";

  // ----------------------------------------------------------- messages
  function onCustom(content, buffers) {
    switch (content.type) {
      case "items":
        cache.put(content.items, buffers || []);
        break;
      case "guesses":
        cache.update(content.items);
        break;
      case "ack":
        if (pending.has(content.seq)) {
          for (const i of pending.get(content.seq)) hidden.delete(i);
          pending.delete(content.seq);
        }
        return; // the queue trait already moved on
      case "error":
        if (pending.has(content.seq)) {
          for (const i of pending.get(content.seq)) {
            hidden.delete(i);
            grid.marks.delete(i);
          }
          pending.delete(content.seq);
        }
        showMessage(content.message, true);
        break;
      case "undone":
        for (const i of content.indices || []) {
          hidden.delete(i);
          grid.marks.delete(i);
        }
        if (mode() === "grid") {
          const i = (content.indices || [])[0];
          const pos = grid.page.indexOf(i);
          if (pos >= 0) grid.cursor = pos;
          else newPage();
        }
        break;
      default:
        return;
    }
    redraw();
  }
  model.on("msg:custom", onCustom);

  function redraw() {
    const m = mode();
    for (const [mm, b] of Object.entries(tabButtons)) b.classList.toggle("dfw-on", mm === m);
    if (m === "grid") {
      if (body.firstChild !== gridEl) body.replaceChildren(gridEl);
      drawGrid();
      drawClasses();
    } else {
      if (body.firstChild !== stage) body.replaceChildren(stage, side);
      drawStage();
    }
    drawHelp();
    const keep = new Set([...(model.get("queue") || []), ...(model.get("review_queue") || []), ...grid.page]);
    cache.prune(keep);
  }

  const onQueue = () => redraw();
  const onMode = () => {
    if (mode() === "grid") newPage();
    showMessage("");
    redraw();
  };
  const onMessage = () => showMessage(model.get("message"), model.get("message_level") === "error");
  const onClasses = () => {
    drawClasses();
    drawHelp();
  };
  model.on("change:queue", onQueue);
  model.on("change:review_queue", onQueue);
  model.on("change:mode", onMode);
  model.on("change:status", drawStatus);
  model.on("change:busy", drawStatus);
  model.on("change:message", onMessage);
  model.on("change:message_level", onMessage);
  model.on("change:classes", onClasses);
  model.on("change:class_keys", onClasses);
  model.on("change:image_size", redraw);

  drawStatus();
  drawClasses();
  onMessage();
  if (mode() === "grid") newPage();
  redraw();
  send({ type: "hello" });
  requestAnimationFrame(() => root.focus({ preventScroll: true }));

  return () => {
    flushLatency();
    model.off("msg:custom", onCustom);
    model.off("change:queue", onQueue);
    model.off("change:review_queue", onQueue);
    model.off("change:mode", onMode);
    model.off("change:status", drawStatus);
    model.off("change:busy", drawStatus);
    model.off("change:message", onMessage);
    model.off("change:message_level", onMessage);
    model.off("change:classes", onClasses);
    model.off("change:class_keys", onClasses);
    model.off("change:image_size", redraw);
    cache.clear();
  };
}

export default { render };
