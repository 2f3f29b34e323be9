// VisualSearch's "Label everything" panel: propose from examples / zero-shot, a
// threshold box, the counts per class and sample tiles at several confidence levels,
// commit and undo. State lives in Python (traits proposal_*); images come by index.
import { h } from "./style.js";

/** Build the panel. `send(msg)` posts an action; `loadImages(el)` fills image boxes.
 * Returns {el, draw}: call draw() when a proposal trait changes. */
export function proposalPanel(model, { send, loadImages }) {
  const propProto = h("button", { class: "dfw-btn", text: "Propose from examples",
    title: "Prototype of each class's labeled examples -> a label for every unlabeled item" });
  const propZero = h("button", { class: "dfw-btn", text: "Propose zero-shot" });
  const thr = h("input", { class: "dfw-input dfw-vs-thr", type: "number", min: "0", max: "1", step: "0.05",
    "aria-label": "minimum confidence" });
  const near = h("input", { type: "checkbox", "aria-label": "only items close to an example" });
  const nearBox = h("label", { class: "dfw-label", title: "Leave out items far from every example "
    + "(\"none of these\"); they keep no label. Takes effect on the next proposal." },
    near, " only items close to an example");
  const commitBtn = h("button", { class: "dfw-btn dfw-primary" });
  const undoProp = h("button", { class: "dfw-btn", text: "Undo last commit" });
  const body = h("div", { class: "dfw-vs-prop-body" });
  const el = h("div", { class: "dfw-vs-prop" },
    h("div", { class: "dfw-vs-prop-bar" }, h("span", { class: "dfw-label", text: "Label everything:" }),
      propProto, propZero, nearBox,
      h("label", { class: "dfw-label dfw-vs-thr-box" }, "min. confidence ", thr), commitBtn,
      undoProp),
    body);
  propProto.addEventListener("click", () => send({ type: "propose", method: "prototype" }));
  propZero.addEventListener("click", () => send({ type: "propose", method: "zero-shot" }));
  thr.addEventListener("change", () => {
    const v = Number(thr.value);
    if (Number.isFinite(v)) { model.set("min_confidence", Math.min(1, Math.max(0, v))); model.save_changes(); }
  });
  near.addEventListener("change", () => { model.set("only_near_examples", near.checked); model.save_changes(); });
  commitBtn.addEventListener("click", () => send({ type: "commit" }));
  undoProp.addEventListener("click", () => send({ type: "undo_proposal" }));

  function countsTable(summary) {
    const shownAt = summary.length && summary[0].threshold != null
      ? summary[0].threshold : model.get("min_confidence");
    const table = h("table", { class: "dfw-vs-counts" },
      h("tr", {}, h("th", { text: "class" }), h("th", { text: "proposed" }),
        h("th", { text: `≥ ${shownAt.toFixed(2)}` }), h("th", { text: "left out" }),
        h("th", { text: "median conf." })));
    for (const r of summary) {
      table.append(h("tr", {}, h("td", { text: r.label }), h("td", { text: r.proposed.toLocaleString() }),
        h("td", { text: r.above_threshold.toLocaleString() }),
        h("td", { text: (r.left_out || 0).toLocaleString() }),
        h("td", { text: r.median_confidence == null ? "–" : r.median_confidence.toFixed(3) })));
    }
    return table;
  }

  function samplesByLevel() {
    const levels = h("div", { class: "dfw-vs-levels" });
    const byLevel = new Map();
    for (const sm of model.get("proposal_samples")) {
      if (!byLevel.has(sm.level)) byLevel.set(sm.level, []);
      byLevel.get(sm.level).push(sm);
    }
    for (const [level, items] of byLevel) {
      const row = h("div", { class: "dfw-vs-level" }, h("span", { text: `near ${level}` }));
      for (const sm of items) {
        row.append(h("div", { class: "dfw-vs-sample", title: `item ${sm.index}: ${sm.label} (${sm.confidence})` },
          h("div", { class: "dfw-vs-simg", "data-img": String(sm.index) }),
          h("b", { text: sm.label }), h("span", { text: sm.confidence.toFixed(2) })));
      }
      levels.append(row);
    }
    return levels;
  }

  function draw() {
    const method = model.get("proposal_method");
    const summary = model.get("proposal_summary");
    const textOn = model.get("text_enabled");
    propZero.disabled = !textOn;
    propZero.title = textOn ? "CLIP similarity to each class name" : model.get("text_reason");
    if (document.activeElement !== thr) thr.value = String(model.get("min_confidence"));
    near.checked = !!model.get("only_near_examples");
    const total = summary.reduce((a, r) => a + r.above_threshold, 0);
    commitBtn.textContent = method ? `Commit ${total.toLocaleString()} labels` : "Commit";
    commitBtn.disabled = !method || !total;
    body.replaceChildren();
    if (!method) return;
    const out = model.get("proposal_left_out") || {};
    const note = out.count
      ? h("div", { class: "dfw-vs-leftout" }, h("b", { text: `${out.count.toLocaleString()} left out` }),
        ` as none of these: ${out.reason || "far from every example"}. They keep no label.`)
      : null;
    body.append(...(note ? [note] : []), countsTable(summary), samplesByLevel());
    loadImages(body);
  }

  return { el, draw };
}
