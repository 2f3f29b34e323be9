// VisualSearch view: class chips, examples of the active class (star a tile, drop or pick
// an image file, a text prompt for CLIP models), a paged grid of nearest neighbours with
// their similarity; select (click, shift-click range, "Select top k"), accept or reject.
// All state lives in Python; this view sends actions as custom messages. Traits carry
// indices only: images are fetched by index as binary buffers (lib/images.js).
// Linked views: hovering a tile focuses its item in the Session (debounced "hover"
// messages: the map rings it); "Use the selection (N)" takes the map's lasso as examples.
import { injectStyle, h, showMessage } from "./lib/style.js";
import { isolateKeys } from "./lib/keyboard.js";
import { ImageStore } from "./lib/images.js";
import { listeners } from "./lib/events.js";
import { VISUAL_SEARCH_CSS } from "./lib/visual_search_style.js";
import { proposalPanel } from "./lib/visual_search_proposal.js";

function render({ model, el }) {
  injectStyle("dfw-visual-search-css", VISUAL_SEARCH_CSS);
  const root = h("div", { class: "dfw-root dfw-vs" });
  isolateKeys(root);
  el.appendChild(root);
  const send = (msg, buffers) => model.send(msg, undefined, buffers);
  const store = new ImageStore(model, { edge: model.get("thumb_size") });
  let removed = false;
  const msg = h("div", { class: "dfw-msg", role: "status" });

  /** Put the image of each `[data-img]` box under `container` into it (one request). */
  async function loadImages(container) {
    const boxes = [...container.querySelectorAll("[data-img]:not([data-loaded])")];
    if (!boxes.length) return;
    try {
      await store.get(boxes.map((b) => Number(b.dataset.img)));
    } catch (err) {
      if (!removed) showMessage(msg, `Images did not load: ${err.message}`, "error");
      return;
    }
    if (removed) return;
    for (const box of boxes) {
      if (!box.isConnected || box.dataset.loaded) continue;
      const img = store.img(Number(box.dataset.img));
      if (img) { box.replaceChildren(img); box.dataset.loaded = "1"; }
    }
    store.prune(new Set([...root.querySelectorAll("[data-img]")].map((b) => Number(b.dataset.img))));
  }

  // ---- class bar
  const classesEl = h("div", { class: "dfw-vs-classes" });
  const newClass = h("input", { class: "dfw-input dfw-chip-input", placeholder: "New class…",
    "aria-label": "new class name" });
  const addClass = () => {
    if (newClass.value.trim()) { send({ type: "add_class", name: newClass.value.trim() }); newClass.value = ""; }
  };
  newClass.addEventListener("keydown", (e) => { if (e.key === "Enter") addClass(); });
  const addBtn = h("button", { class: "dfw-btn", text: "+ Add", title: "Add a class", onclick: addClass });
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
  const useSelBtn = h("button", { class: "dfw-btn dfw-vs-use-selection",
    onclick: () => send({ type: "use_selection" }) });
  const useSel = h("span", {}, useSelBtn); // keeps the tooltip while the button is disabled
  const examplesBar = h("div", { class: "dfw-vs-examples" }, exTitle, exList, drop, fileInput,
    h("span", { class: "dfw-vs-prompt" }, promptInput, promptBtn), useSel, why, clearBtn);

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
  const proposal = proposalPanel(model, { send, loadImages });

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
  const goTo = (p) => { model.set("page", p); model.save_changes(); };
  prev.addEventListener("click", () => goTo(Math.max(0, model.get("page") - 1)));
  next.addEventListener("click", () => goTo(Math.min(model.get("n_pages") - 1, model.get("page") + 1)));
  const resultsBar = h("div", { class: "dfw-toolbar" }, head, h("span", { class: "dfw-spacer" }),
    topk, selTop, acceptBtn, rejectBtn, h("span", { class: "dfw-group" }, prev, pageInfo, next));

  const grid = h("div", { class: "dfw-vs-grid" });
  const hint = h("div", { class: "dfw-vs-hint", text: "Under each image: how similar it is to the query (1 = identical)." });
  root.append(toolbar, examplesBar, proposal.el, resultsBar, hint, grid, msg);

  // ---- hover -> the Session's focus, debounced: one message per settled hover
  let hoverSent = -1;
  let hoverWanted = -1;
  let hoverTimer = null;
  function hoverTo(index, delay) {
    hoverWanted = index;
    clearTimeout(hoverTimer);
    hoverTimer = setTimeout(() => {
      if (removed || hoverWanted === hoverSent) return;
      hoverSent = hoverWanted;
      send({ type: "hover", index: hoverSent });
    }, delay);
  }

  // ---- drawing
  let anchor = null; // last clicked tile rank, for shift-click ranges
  function drawUseSelection() {
    const n = model.get("selection_size") || 0;
    const active = model.get("active_class");
    useSelBtn.textContent = `Use the selection (${n.toLocaleString("en-US")})`;
    useSelBtn.disabled = !n || !active;
    useSel.title = !n ? "Select items on the map first (Shift+drag draws a lasso)"
      : !active ? "Add a class first" : `Make the ${n.toLocaleString("en-US")} selected items the examples of ${active}`;
  }
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
      const isItem = ex.kind === "item" && ex.index >= 0;
      const box = h("div", { class: "dfw-vs-ex-item", "data-img": isItem ? String(ex.index) : null,
        title: ex.kind === "text" ? ex.text : ex.kind === "image" ? ex.name : `item ${ex.index}` });
      if (!isItem) box.textContent = ex.kind === "text" ? `“${ex.text}”` : ex.name || "image";
      exList.append(box);
    }
    const on = model.get("text_enabled");
    promptInput.disabled = !on; promptBtn.disabled = !on;
    why.textContent = on ? "" : model.get("text_reason");
    clearBtn.disabled = !exs.length;
    loadImages(exList);
  }
  function onTileClick(e, it, results) {
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
  }
  function drawGrid() {
    const items = model.get("page_items");
    const sel = new Set(model.get("selected"));
    const active = model.get("active_class") || "class";
    grid.style.setProperty("--dfw-thumb", `${model.get("thumb_size")}px`);
    const results = model.get("mode") === "results";
    head.replaceChildren();
    hint.style.display = results && items.length ? "" : "none";
    if (results) head.append("Nearest neighbours of ", h("b", { text: model.get("query_label") }));
    else head.append("Browse: ", h("b", { text: "star ☆ an item" }), ` to make it an example of ${active}`);
    acceptBtn.textContent = `Accept as ${active}` + (sel.size ? ` (${sel.size})` : "");
    rejectBtn.textContent = `Not ${active}`;
    acceptBtn.disabled = rejectBtn.disabled = !sel.size || !model.get("active_class");
    topk.disabled = selTop.disabled = !results;
    pageInfo.textContent = `${model.get("page") + 1} / ${Math.max(1, model.get("n_pages"))}`;
    prev.disabled = model.get("page") <= 0;
    next.disabled = model.get("page") >= model.get("n_pages") - 1;
    grid.replaceChildren();
    for (const it of items) {
      const tile = h("div", { class: "dfw-tile", "data-index": String(it.index), "data-rank": String(it.rank),
        "aria-selected": String(sel.has(it.index)), role: "option" },
        h("div", { class: "dfw-vs-img", "data-img": String(it.index) }),
        h("span", { class: "dfw-sim", text: it.similarity == null ? `#${it.index}` : it.similarity.toFixed(3),
          title: it.similarity == null ? `item ${it.index}` : `item ${it.index}: similarity ${it.similarity.toFixed(3)} (1 = identical)` }));
      if (it.label) tile.append(h("span", { class: "dfw-badge", text: it.label }));
      const star = h("button", { class: "dfw-star", text: "☆", title: `Make this an example of ${active}`,
        "aria-label": `make item ${it.index} an example` });
      star.addEventListener("click", (e) => { e.stopPropagation(); send({ type: "example_item", index: it.index }); });
      tile.append(star);
      tile.addEventListener("click", (e) => onTileClick(e, it, results));
      tile.addEventListener("mouseenter", () => hoverTo(it.index, 120));
      tile.addEventListener("mouseleave", () => hoverTo(-1, 200));
      grid.append(tile);
    }
    if (!items.length) grid.append(h("div", { class: "dfw-label", text: "No results: every neighbour is labeled already." }));
    loadImages(grid);
  }
  function drawMsg() { showMessage(msg, model.get("message"), model.get("message_level")); }
  function onThumbSize() {
    store.clear();
    store.edge = model.get("thumb_size");
    for (const box of root.querySelectorAll("[data-loaded]")) delete box.dataset.loaded;
    drawExamples(); drawGrid(); proposal.draw();
  }

  // ---- wiring (every model listener is removed when the view is removed)
  const ev = listeners(model);
  const on = (names, fn) => names.forEach((n) => ev.on(`change:${n}`, fn));
  drawClasses(); drawExamples(); drawGrid(); drawMsg(); proposal.draw(); drawUseSelection();
  on(["selection_size", "active_class"], drawUseSelection);
  on(["proposal_method", "proposal_summary", "proposal_samples", "proposal_left_out", "min_confidence",
    "only_near_examples", "text_enabled"], proposal.draw);
  on(["classes", "active_class"], () => { drawClasses(); drawGrid(); });
  on(["examples", "text_enabled", "text_reason"], drawExamples);
  on(["page_items", "selected", "page", "n_pages", "mode", "query_label"], drawGrid);
  on(["thumb_size"], onThumbSize);
  on(["message", "message_level"], drawMsg);
  return () => {
    removed = true;
    clearTimeout(hoverTimer);
    if (hoverSent >= 0) send({ type: "hover", index: -1 });
    ev.off();
    store.clear();
  };
}

export default { render };
