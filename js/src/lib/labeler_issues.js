// The Labeler's review of the data-issue report (Python: dfwidgets/widgets/labeler_review.py):
// the first open entry of `issue_entries` above the label-error review. A duplicate group
// is shown side by side, the one to keep first; an outlier with its nearest neighbours.
// Buttons send {type: "issue_action", action, key, index, label}.
import { h } from "./style.js";

export const ISSUES_CSS = `
.dfw-lab-issues { border: 1px solid var(--dfw-border1); border-radius: 6px; padding: 8px; margin-bottom: 10px; }
.dfw-lab-issues:empty { display: none; }
.dfw-lab-issue-row { display: flex; gap: 8px; flex-wrap: wrap; align-items: flex-start; }
.dfw-lab-issue-item { display: flex; flex-direction: column; gap: 4px; align-items: center; font-size: 11px; }
.dfw-lab-issue-item img { width: 96px; height: 96px; object-fit: contain; background: var(--dfw-bg3); border-radius: 4px; }
.dfw-lab-issue-item.dfw-keep img { outline: 2px solid var(--dfw-ok); }
.dfw-lab-issue-item.dfw-near img { width: 64px; height: 64px; opacity: .85; }
.dfw-lab-issue-item .dfw-btn, .dfw-lab-issue-item .dfw-select { align-self: stretch; font-size: 11px;
  padding: 2px 6px; line-height: 16px; }
.dfw-lab-issue-item .dfw-select { min-width: 110px; }
.dfw-lab-issues > .dfw-lab-issue-skip { margin-top: 8px; }
`;

const KIND = { exact_duplicate: "Exact duplicates", near_duplicate: "Near-duplicates", outlier: "Outlier" };

/** Entries of the report in hand, their items first (for preloading images). */
export function issueItems(model) {
  const out = [];
  for (const e of (model.get("issue_entries") || []).slice(0, 2)) out.push(...e.items, ...(e.neighbours || []));
  return out;
}

function picture(v, index) {
  const img = v.images.thumb(index);
  return img || h("span", { text: "loading…" });
}

function itemBox(v, send, entry, index, { keep = false, near = false } = {}) {
  const act = (action, extra = {}) => send({ type: "issue_action", action, key: entry.key, index, ...extra });
  const box = h("div", { class: `dfw-lab-issue-item${keep ? " dfw-keep" : ""}${near ? " dfw-near" : ""}`, "data-index": String(index) },
    picture(v, index), h("span", { text: `#${index}${keep ? " · keep" : ""}` }));
  if (near) return box;
  const select = h("select", { class: "dfw-select", "aria-label": `relabel item ${index}` },
    h("option", { value: "", text: "relabel as…" }), (v.model.get("classes") || []).map((c) => h("option", { value: c, text: c })));
  select.addEventListener("change", () => select.value && act("relabel", { label: select.value }));
  box.append(
    h("button", { type: "button", class: "dfw-btn", text: "keep this one", onclick: () => act("keep") }),
    h("button", { type: "button", class: "dfw-btn", text: "exclude", onclick: () => act("exclude") }),
    select);
  return box;
}

/** Draw the first open entry into `el` (empty when there is none). */
export function drawIssues(v, el, send) {
  const entries = v.model.get("issue_entries") || [];
  const total = v.model.get("issue_total");
  if (!entries.length) {
    el.replaceChildren();
    return;
  }
  const e = entries[0];
  const head = h("div", { class: "dfw-lab-h", text: `${KIND[e.kind] || e.kind} · 1 of ${total} open data issues · ${e.suggestion}` });
  const row = h("div", { class: "dfw-lab-issue-row" },
    e.items.map((i) => itemBox(v, send, e, i, { keep: e.keep === i })));
  const parts = [head, row];
  if (e.neighbours && e.neighbours.length) {
    parts.push(h("div", { class: "dfw-lab-h", text: "Nearest neighbours" }),
      h("div", { class: "dfw-lab-issue-row" }, e.neighbours.map((i) => itemBox(v, send, e, i, { near: true }))));
  }
  parts.push(h("button", { type: "button", class: "dfw-btn dfw-lab-issue-skip", text: "skip this issue", onclick: () => send({ type: "issue_action", action: "skip", key: e.key }) }));
  el.replaceChildren(...parts);
}
