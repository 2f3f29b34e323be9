// The EmbeddingMap's panels: legend, item details (hover tip and pinned item), and
// where the hover tip goes. Pure DOM helpers; js/src/embedding_map.js owns the state.
import { h } from "./style.js";

export const fmt = (n) => Number(n).toLocaleString("en-US");

/** Fill `legend` from the `_legend` trait ({title, kind, items, min_label, max_label}) and
 * explain the marks drawn over the points (`marks`: {focus: item or -1, highlighted: n}). */
export function renderLegend(legend, lg, palette, marks = {}) {
  legend.replaceChildren(h("div", { class: "dfw-map-legend-title" }, (lg && lg.title) || ""));
  if (!lg) return;
  if (lg.kind === "continuous") {
    const stops = palette.filter((_, k) => k % 32 === 0 || k === palette.length - 1);
    legend.append(
      h("div", { class: "dfw-ramp", style: `background: linear-gradient(to right, ${stops.join(",")})` }),
      h("div", { class: "dfw-ramp-ends" }, h("span", {}, lg.min_label ?? ""), h("span", {}, lg.max_label ?? "")));
  }
  for (const it of lg.items || []) {
    legend.append(h("div", { class: "dfw-map-legend-row", title: `${it.name}: ${fmt(it.count)}` },
      h("span", { class: "dfw-swatch", style: `background:${it.color}` }),
      h("span", { class: "dfw-name" }, it.name), h("span", { class: "dfw-count" }, fmt(it.count))));
  }
  const rows = [];
  if (marks.highlighted > 0) {
    rows.push(h("div", { class: "dfw-map-legend-row dfw-map-legend-mark",
      title: "The Search tab's results, outlined and enlarged on the map" },
    h("span", { class: "dfw-swatch dfw-swatch-outline" }), h("span", { class: "dfw-name" }, "search results"),
    h("span", { class: "dfw-count" }, fmt(marks.highlighted))));
  }
  if (Number.isInteger(marks.focus) && marks.focus >= 0) {
    rows.push(h("div", { class: "dfw-map-legend-row dfw-map-legend-mark",
      title: "The item shown in the Labeler (or the search tile under the mouse)" },
    h("span", { class: "dfw-swatch dfw-swatch-ring" }), h("span", { class: "dfw-name" }, "current item")));
  }
  if (rows.length) legend.append(h("div", { class: "dfw-map-legend-sep" }), ...rows);
}

/** Item details {id, label, prediction?, confidence?, value?} as key/value rows. */
export function fillInfo(target, d) {
  const rows = [["id", d.id], ["label", d.label ?? "—"]];
  if (d.prediction != null) rows.push(["prediction", d.prediction]);
  if (d.confidence != null) rows.push(["confidence", `${(100 * d.confidence).toFixed(1)}%`]);
  if (d.value != null) rows.push([d.value_name || "value", d.value]);
  target.replaceChildren(...rows.flatMap(([k, v]) => [h("span", { class: "dfw-k" }, k), h("span", {}, String(v))]));
}

/** Just the item number, while its details are on their way. */
export function fillIndex(target, i) {
  target.replaceChildren(h("span", { class: "dfw-k" }, "item"), h("span", {}, fmt(i)));
}

/** Put `tip` next to screen position `pos` ([x, y] in `body`), inside `body`. */
export function placeTip(tip, body, pos) {
  if (!pos) return;
  const tw = tip.offsetWidth || 240;
  const th = tip.offsetHeight || 90;
  let x = pos[0] + 14;
  let y = pos[1] + 14;
  if (x + tw > body.clientWidth - 4) x = pos[0] - tw - 14;
  if (y + th > body.clientHeight - 4) y = pos[1] - th - 14;
  tip.style.left = `${Math.max(4, x)}px`;
  tip.style.top = `${Math.max(4, y)}px`;
}

/** Layout status line: "2,000 items · PCA · computing UMAP…", or with the reason a
 * layout failed: "2,000 items · PCA · UMAP failed: umap-learn is not installed". */
export function statusText(n, method, error = "") {
  const names = { umap: "UMAP", pca: "PCA", "pca-pending": "PCA · computing UMAP…", custom: "custom layout" };
  const base = `${fmt(n)} items · ${names[method] || method}`;
  return error ? `${base} · UMAP failed: ${error}` : base;
}
