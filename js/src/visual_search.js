// VisualSearch view: class chips, examples of the active class (star a tile, drop or pick
// an image file, a text prompt for CLIP models), a paged grid of nearest neighbours with
// their similarity; select (click, shift-click range, "Select top k"), accept or reject.
// All state lives in Python; this view sends actions as custom messages.
import { BASE_CSS, injectStyle, h, showMessage } from "./lib/style.js";
import { isolateKeys } from "./lib/keyboard.js";

const CSS = `
.dfw-vs .dfw-vs-classes { display: flex; flex-wrap: wrap; gap: 6px; align-items: center; }
.dfw-vs .dfw-chip { font: inherit; cursor: pointer; border: 1px solid var(--dfw-border);
  background: var(--dfw-bg); color: var(--dfw-fg); border-radius: 999px; padding: 2px 12px;
  line-height: 20px; }
.dfw-vs .dfw-chip[aria-pressed="true"] { background: var(--dfw-accent); border-color: var(--dfw-accent);
  color: #fff; }
.dfw-vs .dfw-chip-input { width: 120px; border-radius: 999px; }
.dfw-vs .dfw-vs-examples { display: flex; flex-wrap: wrap; gap: 10px; align-items: center;
  padding: 8px 10px; border-bottom: 1px solid var(--dfw-border); }
.dfw-vs .dfw-vs-ex { display: flex; flex-wrap: wrap; gap: 6px; align-items: center; min-height: 44px; }
.dfw-vs .dfw-vs-ex-item { width: 44px; height: 44px; border: 2px solid var(--dfw-accent);
  border-radius: 4px; display: flex; align-items: center; justify-content: center;
  background: var(--dfw-bg3); overflow: hidden; font-size: 10px; color: var(--dfw-fg2);
  text-align: center; line-height: 11px; }
.dfw-vs .dfw-vs-ex-item img { width: 100%; height: 100%; image-rendering: pixelated; object-fit: contain; }
.dfw-vs .dfw-vs-drop { border: 1px dashed var(--dfw-border); border-radius: 4px; padding: 8px 12px;
  color: var(--dfw-fg2); cursor: pointer; white-space: nowrap; }
.dfw-vs .dfw-vs-drop.dfw-over { border-color: var(--dfw-accent); color: var(--dfw-accent); }
.dfw-vs .dfw-vs-prompt { display: inline-flex; gap: 6px; align-items: center; }
.dfw-vs .dfw-vs-prompt input { width: 220px; }
.dfw-vs .dfw-vs-why { color: var(--dfw-fg2); font-size: 11px; max-width: 300px; }
.dfw-vs .dfw-vs-grid { display: grid; gap: 8px; padding: 10px;
  grid-template-columns: repeat(auto-fill, minmax(calc(var(--dfw-thumb) + 12px), 1fr)); }
.dfw-vs .dfw-tile { position: relative; border: 2px solid transparent; border-radius: 6px;
  padding: 4px; cursor: pointer; background: var(--dfw-bg2); user-select: none;
  display: flex; flex-direction: column; align-items: center; gap: 2px; }
.dfw-vs .dfw-tile:hover { border-color: var(--dfw-border); }
.dfw-vs .dfw-tile[aria-selected="true"] { border-color: var(--dfw-accent);
  background: color-mix(in srgb, var(--dfw-accent) 14%, var(--dfw-bg2)); }
.dfw-vs .dfw-tile img { width: var(--dfw-thumb); height: var(--dfw-thumb); image-rendering: pixelated;
  object-fit: contain; background: var(--dfw-bg3); border-radius: 3px; }
.dfw-vs .dfw-tile .dfw-sim { font-size: 11px; color: var(--dfw-fg2); font-variant-numeric: tabular-nums; }
.dfw-vs .dfw-tile .dfw-badge { position: absolute; left: 4px; top: 4px; font-size: 10px; padding: 0 4px;
  border-radius: 3px; background: var(--dfw-ok); color: #fff; max-width: 70%; overflow: hidden;
  text-overflow: ellipsis; white-space: nowrap; }
.dfw-vs .dfw-star { position: absolute; right: 2px; top: 2px; border: none; cursor: pointer;
  background: var(--dfw-bg); color: var(--dfw-fg2); border-radius: 50%; width: 22px; height: 22px;
  font-size: 14px; line-height: 22px; padding: 0; opacity: .85; }
.dfw-vs .dfw-star:hover { color: #f5a623; opacity: 1; }
.dfw-vs .dfw-vs-head { color: var(--dfw-fg2); }
.dfw-vs .dfw-vs-head b { color: var(--dfw-fg); font-weight: 600; }
.dfw-vs .dfw-vs-topk { width: 56px; }
.dfw-vs .dfw-vs-prop { padding: 8px 10px; border-bottom: 1px solid var(--dfw-border);
  display: flex; flex-direction: column; gap: 8px; }
.dfw-vs .dfw-vs-prop-bar { display: flex; flex-wrap: wrap; gap: 8px; align-items: center; }
.dfw-vs .dfw-vs-thr { width: 64px; }
.dfw-vs table.dfw-vs-counts { border-collapse: collapse; font-variant-numeric: tabular-nums; }
.dfw-vs table.dfw-vs-counts th, .dfw-vs table.dfw-vs-counts td { padding: 2px 10px; text-align: right;
  border-bottom: 1px solid var(--dfw-border); }
.dfw-vs table.dfw-vs-counts th:first-child, .dfw-vs table.dfw-vs-counts td:first-child { text-align: left; }
.dfw-vs table.dfw-vs-counts th { color: var(--dfw-fg2); font-weight: 500; }
.dfw-vs .dfw-vs-prop-body { display: flex; flex-wrap: wrap; gap: 16px; align-items: flex-start; }
.dfw-vs .dfw-vs-levels { display: flex; flex-direction: column; gap: 4px; }
.dfw-vs .dfw-vs-level { display: flex; gap: 4px; align-items: center; flex-wrap: wrap; }
.dfw-vs .dfw-vs-level > span { width: 70px; color: var(--dfw-fg2); font-size: 11px; }
.dfw-vs .dfw-vs-sample { display: flex; flex-direction: column; align-items: center; width: 52px;
  font-size: 10px; color: var(--dfw-fg2); }
.dfw-vs .dfw-vs-sample img { width: 40px; height: 40px; image-rendering: pixelated; border-radius: 3px;
  background: var(--dfw-bg3); }
.dfw-vs .dfw-vs-sample b { color: var(--dfw-fg); font-weight: 500; max-width: 52px; overflow: hidden;
  text-overflow: ellipsis; white-space: nowrap; }
`;

function pngURL(data) {
  if (!data) return null;
  const bytes = data instanceof DataView
    ? new Uint8Array(data.buffer, data.byteOffset, data.byteLength)
    : new Uint8Array(data.buffer || data);
  return URL.createObjectURL(new Blob([bytes], { type: "image/png" }));
}

function render({ model, el }) {
  injectStyle("dfw-base-css", BASE_CSS);
  injectStyle("dfw-visual-search-css", CSS);
  const root = h("div", { class: "dfw-root dfw-vs" });
  isolateKeys(root);
  el.appendChild(root);
  const urls = [];
  const freeUrls = () => { while (urls.length) URL.revokeObjectURL(urls.pop()); };
  const send = (msg, buffers) => model.send(msg, undefined, buffers);

  // ---- class bar
  const classesEl = h("div", { class: "dfw-vs-classes" });
  const newClass = h("input", { class: "dfw-input dfw-chip-input", placeholder: "New class…",
    "aria-label": "new class name" });
  newClass.addEventListener("keydown", (e) => {
    if (e.key === "Enter" && newClass.value.trim()) {
      send({ type: "add_class", name: newClass.value.trim() });
      newClass.value = "";
    }
  });
  const addBtn = h("button", { class: "dfw-btn", text: "+ Add", title: "Add a class",
    onclick: () => { if (newClass.value.trim()) { send({ type: "add_class", name: newClass.value.trim() }); newClass.value = ""; } } });
  const toolbar = h("div", { class: "dfw-toolbar" },
    h("span", { class: "dfw-label", text: "Classes" }), classesEl, newClass, addBtn);

  // ---- examples of the active class
  const exTitle = h("span", { class: "dfw-label" });
  const exList = h("div", { class: "dfw-vs-ex" });
  const fileInput = h("input", { type: "file", accept: "image/*", style: "display:none" });
  const drop = h("div", { class: "dfw-vs-drop", role: "button", tabindex: "0",
    text: "Drop an image or click to upload" });
  const promptInput = h("input", { class: "dfw-input", placeholder: "Describe it: a red sneaker",
    "aria-label": "text prompt" });
  const promptBtn = h("button", { class: "dfw-btn", text: "Search" });
  const why = h("div", { class: "dfw-vs-why" });
  const clearBtn = h("button", { class: "dfw-btn", text: "Clear examples" });
  const examplesBar = h("div", { class: "dfw-vs-examples" }, exTitle, exList, drop, fileInput,
    h("span", { class: "dfw-vs-prompt" }, promptInput, promptBtn), why, clearBtn);

  const upload = async (file) => {
    if (!file) return;
    const buf = await file.arrayBuffer();
    send({ type: "upload", name: file.name }, [buf]);
  };
  drop.addEventListener("click", () => fileInput.click());
  drop.addEventListener("keydown", (e) => { if (e.key === "Enter") fileInput.click(); });
  fileInput.addEventListener("change", () => { upload(fileInput.files[0]); fileInput.value = ""; });
  drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("dfw-over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("dfw-over"));
  drop.addEventListener("drop", (e) => {
    e.preventDefault(); e.stopPropagation(); drop.classList.remove("dfw-over");
    upload(e.dataTransfer && e.dataTransfer.files[0]);
  });
  const sendPrompt = () => { if (promptInput.value.trim()) send({ type: "text", text: promptInput.value.trim() }); };
  promptBtn.addEventListener("click", sendPrompt);
  promptInput.addEventListener("keydown", (e) => { if (e.key === "Enter") sendPrompt(); });
  clearBtn.addEventListener("click", () => send({ type: "clear_examples" }));

  // ---- one-shot / zero-shot proposal: preview, threshold, commit
  const propProto = h("button", { class: "dfw-btn", text: "Propose from examples",
    title: "Prototype of each class's labeled examples -> a label for every unlabeled item" });
  const propZero = h("button", { class: "dfw-btn", text: "Propose zero-shot" });
  const thr = h("input", { class: "dfw-input dfw-vs-thr", type: "number", min: "0", max: "1", step: "0.05",
    "aria-label": "minimum confidence" });
  const commitBtn = h("button", { class: "dfw-btn dfw-primary" });
  const undoProp = h("button", { class: "dfw-btn", text: "Undo last commit" });
  const propBody = h("div", { class: "dfw-vs-prop-body" });
  const propPanel = h("div", { class: "dfw-vs-prop" },
    h("div", { class: "dfw-vs-prop-bar" }, h("span", { class: "dfw-label", text: "Label everything:" }),
      propProto, propZero, h("span", { class: "dfw-label", text: "min. confidence" }), thr, commitBtn, undoProp),
    propBody);
  propProto.addEventListener("click", () => send({ type: "propose", method: "prototype" }));
  propZero.addEventListener("click", () => send({ type: "propose", method: "zero-shot" }));
  thr.addEventListener("change", () => {
    const v = Number(thr.value);
    if (Number.isFinite(v)) { model.set("min_confidence", Math.min(1, Math.max(0, v))); model.save_changes(); }
  });
  commitBtn.addEventListener("click", () => send({ type: "commit" }));
  undoProp.addEventListener("click", () => send({ type: "undo_proposal" }));
  const propUrls = [];
  function drawProposal() {
    const method = model.get("proposal_method");
    const summary = model.get("proposal_summary");
    const textOn = model.get("text_enabled");
    propZero.disabled = !textOn;
    propZero.title = textOn ? "CLIP similarity to each class name" : model.get("text_reason");
    if (document.activeElement !== thr) thr.value = String(model.get("min_confidence"));
    const total = summary.reduce((a, r) => a + r.above_threshold, 0);
    commitBtn.textContent = method ? `Commit ${total.toLocaleString()} labels` : "Commit";
    commitBtn.disabled = !method || !total;
    while (propUrls.length) URL.revokeObjectURL(propUrls.pop());
    propBody.replaceChildren();
    if (!method) return;
    const table = h("table", { class: "dfw-vs-counts" },
      h("tr", {}, h("th", { text: "class" }), h("th", { text: "proposed" }),
        h("th", { text: `≥ ${(summary.length && summary[0].threshold != null
          ? summary[0].threshold : model.get("min_confidence")).toFixed(2)}` }),
        h("th", { text: "median conf." })));
    for (const r of summary) {
      table.append(h("tr", {}, h("td", { text: r.label }), h("td", { text: r.proposed.toLocaleString() }),
        h("td", { text: r.above_threshold.toLocaleString() }),
        h("td", { text: r.median_confidence == null ? "–" : r.median_confidence.toFixed(3) })));
    }
    const levels = h("div", { class: "dfw-vs-levels" });
    const byLevel = new Map();
    for (const sm of model.get("proposal_samples")) {
      if (!byLevel.has(sm.level)) byLevel.set(sm.level, []);
      byLevel.get(sm.level).push(sm);
    }
    for (const [level, items] of byLevel) {
      const row = h("div", { class: "dfw-vs-level" }, h("span", { text: `near ${level}` }));
      for (const sm of items) {
        const u = pngURL(sm.png); propUrls.push(u);
        row.append(h("div", { class: "dfw-vs-sample", title: `item ${sm.index}: ${sm.label} (${sm.confidence})` },
          h("img", { src: u, alt: `item ${sm.index}` }), h("b", { text: sm.label }), h("span", { text: sm.confidence.toFixed(2) })));
      }
      levels.append(row);
    }
    propBody.append(table, levels);
  }

  // ---- results toolbar
  const head = h("span", { class: "dfw-vs-head" });
  const topk = h("input", { class: "dfw-input dfw-vs-topk", type: "number", min: "1", value: "20",
    "aria-label": "how many results to select" });
  const selTop = h("button", { class: "dfw-btn", text: "Select top" });
  const acceptBtn = h("button", { class: "dfw-btn dfw-primary" });
  const rejectBtn = h("button", { class: "dfw-btn" });
  const prev = h("button", { class: "dfw-btn", text: "‹", title: "Previous page" });
  const next = h("button", { class: "dfw-btn", text: "›", title: "Next page" });
  const pageInfo = h("span", { class: "dfw-label" });
  selTop.addEventListener("click", () => send({ type: "select_top", k: Number(topk.value) }));
  topk.addEventListener("keydown", (e) => { if (e.key === "Enter") selTop.click(); });
  acceptBtn.addEventListener("click", () => send({ type: "accept" }));
  rejectBtn.addEventListener("click", () => send({ type: "reject" }));
  prev.addEventListener("click", () => { model.set("page", Math.max(0, model.get("page") - 1)); model.save_changes(); });
  next.addEventListener("click", () => { model.set("page", Math.min(model.get("n_pages") - 1, model.get("page") + 1)); model.save_changes(); });
  const resultsBar = h("div", { class: "dfw-toolbar" }, head, h("span", { class: "dfw-spacer" }),
    topk, selTop, acceptBtn, rejectBtn, h("span", { class: "dfw-group" }, prev, pageInfo, next));

  const grid = h("div", { class: "dfw-vs-grid" });
  const msg = h("div", { class: "dfw-msg", role: "status" });
  root.append(toolbar, examplesBar, propPanel, resultsBar, grid, msg);

  // ---- drawing
  let anchor = null; // last clicked tile rank, for shift-click ranges
  function drawClasses() {
    classesEl.replaceChildren();
    const active = model.get("active_class");
    for (const name of model.get("classes")) {
      const chip = h("button", { class: "dfw-chip", text: name, "aria-pressed": String(name === active),
        title: "Click to choose, double-click to rename" });
      chip.addEventListener("click", () => { model.set("active_class", name); model.save_changes(); });
      chip.addEventListener("dblclick", () => {
        const input = h("input", { class: "dfw-input dfw-chip-input", value: name, "aria-label": "rename class" });
        chip.replaceWith(input);
        input.focus(); input.select();
        const done = (ok) => {
          if (ok && input.value.trim() && input.value.trim() !== name) {
            send({ type: "rename_class", old: name, new: input.value.trim() });
          } else drawClasses();
        };
        input.addEventListener("keydown", (e) => { if (e.key === "Enter") done(true); if (e.key === "Escape") done(false); });
        input.addEventListener("blur", () => done(true));
      });
      classesEl.append(chip);
    }
  }
  function drawExamples() {
    const active = model.get("active_class");
    exTitle.textContent = active ? `Examples of ${active}` : "Add a class to start";
    exList.replaceChildren();
    const exs = model.get("examples");
    if (!exs.length) exList.append(h("span", { class: "dfw-label", text: "none yet: star a tile ☆" }));
    for (const ex of exs) {
      const box = h("div", { class: "dfw-vs-ex-item", title: ex.kind === "text" ? ex.text : ex.kind === "image" ? ex.name : `item ${ex.index}` });
      if (ex.png) { const u = pngURL(ex.png); urls.push(u); box.append(h("img", { src: u, alt: `example ${ex.index}` })); }
      else box.textContent = ex.kind === "text" ? `“${ex.text}”` : ex.name || "image";
      exList.append(box);
    }
    const on = model.get("text_enabled");
    promptInput.disabled = !on; promptBtn.disabled = !on;
    why.textContent = on ? "" : model.get("text_reason");
    clearBtn.disabled = !exs.length;
  }
  function drawGrid() {
    const items = model.get("page_items");
    const sel = new Set(model.get("selected"));
    const active = model.get("active_class") || "class";
    grid.style.setProperty("--dfw-thumb", `${model.get("thumb_size")}px`);
    const results = model.get("mode") === "results";
    head.replaceChildren();
    if (results) head.append("Nearest neighbours of ", h("b", { text: model.get("query_label") }));
    else head.append("Browse: ", h("b", { text: "star ☆ an item" }), ` to make it an example of ${active}`);
    acceptBtn.textContent = `Accept as ${active}` + (sel.size ? ` (${sel.size})` : "");
    rejectBtn.textContent = `Not ${active}`;
    acceptBtn.disabled = rejectBtn.disabled = !sel.size || !model.get("active_class");
    topk.disabled = selTop.disabled = !results;
    pageInfo.textContent = `${model.get("page") + 1} / ${Math.max(1, model.get("n_pages"))}`;
    prev.disabled = model.get("page") <= 0;
    next.disabled = model.get("page") >= model.get("n_pages") - 1;
    freeUrls();
    grid.replaceChildren();
    for (const it of items) {
      const u = pngURL(it.png); urls.push(u);
      const tile = h("div", { class: "dfw-tile", "data-index": String(it.index), "data-rank": String(it.rank),
        "aria-selected": String(sel.has(it.index)), role: "option" },
        h("img", { src: u, alt: `item ${it.index}` }),
        h("span", { class: "dfw-sim", text: it.similarity == null ? `#${it.index}` : it.similarity.toFixed(3) }));
      if (it.label) tile.append(h("span", { class: "dfw-badge", text: it.label }));
      const star = h("button", { class: "dfw-star", text: "☆", title: `Make this an example of ${active}`,
        "aria-label": `make item ${it.index} an example` });
      star.addEventListener("click", (e) => { e.stopPropagation(); send({ type: "example_item", index: it.index }); });
      tile.append(star);
      tile.addEventListener("click", (e) => {
        if (!results) return;
        const cur = new Set(model.get("selected"));
        if (e.shiftKey && anchor != null) {
          const [a, b] = [Math.min(anchor, it.rank), Math.max(anchor, it.rank)];
          for (const t of grid.querySelectorAll(".dfw-tile")) {
            const r = Number(t.dataset.rank);
            if (r >= a && r <= b) cur.add(Number(t.dataset.index));
          }
        } else {
          if (cur.has(it.index)) cur.delete(it.index); else cur.add(it.index);
          anchor = it.rank;
        }
        model.set("selected", [...cur]);
        model.save_changes();
      });
      grid.append(tile);
    }
    if (!items.length) grid.append(h("div", { class: "dfw-label", text: "No results: every neighbour is labeled already." }));
  }
  function drawMsg() { showMessage(msg, model.get("message"), model.get("message_level")); }

  const on_ = (names, fn) => { for (const n of names) model.on(`change:${n}`, fn); };
  drawClasses(); drawExamples(); drawGrid(); drawMsg(); drawProposal();
  on_(["proposal_method", "proposal_summary", "proposal_samples", "min_confidence", "text_enabled"], drawProposal);
  const on = (names, fn) => { for (const n of names) model.on(`change:${n}`, fn); };
  on(["classes", "active_class"], () => { drawClasses(); drawGrid(); });
  on(["examples", "text_enabled", "text_reason"], drawExamples);
  on(["page_items", "selected", "page", "n_pages", "mode", "query_label", "thumb_size"], drawGrid);
  on(["message", "message_level"], drawMsg);
  return () => { freeUrls(); while (propUrls.length) URL.revokeObjectURL(propUrls.pop()); };
}

export default { render };
