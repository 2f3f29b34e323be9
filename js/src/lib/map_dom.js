// The EmbeddingMap's DOM: toolbar (status, mouse modes, colour menu, selection count,
// "Label selection as…"), the plot body (canvas, legend, hover tip, pinned item) and the
// message line. Pure construction; js/src/embedding_map.js wires the behaviour through
// the `on` callbacks: {mode(m), colorBy(v), clear(), label(), unpin()}; `colorModes`:
// the "Colour by" menu (Python's COLOR_MODES, from the _color_modes trait).
import { h } from "./style.js";
import { isMac } from "./keyboard.js";

export const COLOR_MODES = ["label", "prediction", "uncertainty", "difficulty",
  "weak label", "no rule"];  // weak label / no rule: issue 18 (rules)

export function buildMapDom(on, colorModes = COLOR_MODES) {
  const status = h("span", { class: "dfw-map-status" });
  const modeBtns = {};
  const seg = h("div", { class: "dfw-seg", role: "group", "aria-label": "Mouse mode" },
    ...[["pan", "Pan", "Drag pans, wheel zooms; Shift+drag lassoes (L)"],
        ["lasso", "Lasso", "Drag draws a lasso (L)"],
        ["box", "Box", "Drag draws a box (B)"]].map(([mode, text, title]) => {
      modeBtns[mode] = h("button", { class: "dfw-btn", title, "aria-pressed": "false",
        "data-mode": mode, onclick: () => on.mode(mode) }, text);
      return modeBtns[mode];
    }));
  const colorSelect = h("select", { class: "dfw-select", "aria-label": "Colour by",
      onchange: () => on.colorBy(colorSelect.value) },
    ...colorModes.map((v) => h("option", { value: v }, v)),
    h("option", { value: "custom", disabled: true }, "custom"));
  const selCount = h("span", { class: "dfw-map-selcount" });
  const clearBtn = h("button", { class: "dfw-btn", title: "Clear the selection (Esc)",
    onclick: () => on.clear() }, "Clear");
  const listId = `dfw-classes-${Math.random().toString(36).slice(2)}`;
  const datalist = h("datalist", { id: listId });
  const labelInput = h("input", { class: "dfw-input dfw-map-label-input", list: listId,
    placeholder: "class name…", "aria-label": "Label the selection as",
    onkeydown: (e) => { if (e.key === "Enter") { e.preventDefault(); on.label(); } } });
  const labelBtn = h("button", { class: "dfw-btn dfw-primary dfw-map-label-apply",
    onclick: () => on.label() }, "Label");
  const toolbar = h("div", { class: "dfw-toolbar" },
    status, seg,
    h("span", { class: "dfw-group" }, h("span", { class: "dfw-label" }, "Colour by"), colorSelect),
    h("span", { class: "dfw-spacer" }),
    h("span", { class: "dfw-group" }, selCount, clearBtn),
    h("span", { class: "dfw-group" }, h("span", { class: "dfw-label" }, "Label selection as"),
      labelInput, datalist, labelBtn));

  const canvas = h("canvas", { class: "dfw-map-canvas" });
  const legend = h("div", { class: "dfw-map-legend" });
  const tipThumb = h("img", { class: "dfw-map-tip-thumb", alt: "" });
  const tipInfo = h("div", { class: "dfw-map-info" });
  const tip = h("div", { class: "dfw-map-tip" }, tipThumb, tipInfo);
  const pinImg = h("img", { width: 128, height: 128, alt: "" });
  const pinInfo = h("div", { class: "dfw-map-info" });
  const pin = h("div", { class: "dfw-map-pin" }, pinImg, pinInfo,
    h("button", { class: "dfw-close", title: "Unpin", "aria-label": "Unpin",
      onclick: () => on.unpin() }, "×"));
  const body = h("div", { class: "dfw-map-body" }, canvas, legend, tip, pin);
  const mod = isMac ? "⌘" : "Ctrl";
  const help = `Shift+drag or long-press: lasso · ${mod}: add · Alt: subtract · Esc: clear · click: pin`;
  const msg = h("div", { class: "dfw-msg", "data-kind": "info" }, help);
  const root = h("div", { class: "dfw-root dfw-map" }, toolbar, body, msg);
  return { root, status, modeBtns, colorSelect, selCount, clearBtn, datalist, labelInput,
    canvas, legend, tip, tipThumb, tipInfo, pin, pinImg, pinInfo, body, msg, help };
}
