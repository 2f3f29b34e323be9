// Shared look for every dfwidgets widget: JupyterLab CSS variables with fallbacks,
// so light and dark themes both work (and the widget still looks right outside Lab).
// The base CSS goes into the page once (one <style id="dfw-base-css">), whatever the
// number of widgets and views: injectStyle() adds it before any widget's own CSS.

export const BASE_CSS = `
.dfw-root {
  --dfw-bg: var(--jp-layout-color0, #fff);
  --dfw-bg2: var(--jp-layout-color1, #fff);
  --dfw-bg3: var(--jp-layout-color2, #eee);
  --dfw-fg0: var(--jp-ui-font-color0, rgba(0,0,0,1));
  --dfw-fg: var(--jp-ui-font-color1, rgba(0,0,0,.87));
  --dfw-fg2: var(--jp-ui-font-color2, rgba(0,0,0,.54));
  --dfw-border: var(--jp-border-color2, #e0e0e0);
  --dfw-border1: var(--jp-border-color1, #bdbdbd);
  --dfw-accent: var(--jp-brand-color1, #1976d2);
  --dfw-error: var(--jp-error-color1, #d32f2f);
  --dfw-ok: var(--jp-success-color1, #388e3c);
  --dfw-warn: var(--jp-warn-color1, #f57c00);
  --dfw-font: var(--jp-ui-font-family, system-ui, -apple-system, "Segoe UI", sans-serif);
  --dfw-size: var(--jp-ui-font-size1, 13px);
  font-family: var(--dfw-font); font-size: var(--dfw-size); color: var(--dfw-fg);
  background: var(--dfw-bg); border: 1px solid var(--dfw-border); border-radius: 6px;
  box-sizing: border-box; outline: none; position: relative; overflow: hidden;
}
.dfw-root:focus-visible { box-shadow: 0 0 0 2px var(--dfw-accent); }
.dfw-root *, .dfw-root *::before, .dfw-root *::after { box-sizing: border-box; }
.dfw-toolbar { display: flex; flex-wrap: wrap; align-items: center; gap: 8px;
  padding: 8px 10px; border-bottom: 1px solid var(--dfw-border); background: var(--dfw-bg2); }
.dfw-toolbar .dfw-spacer { flex: 1 1 auto; }
.dfw-group { display: inline-flex; align-items: center; gap: 6px; }
.dfw-label { color: var(--dfw-fg2); white-space: nowrap; }
.dfw-btn { font: inherit; color: var(--dfw-fg); background: var(--dfw-bg); cursor: pointer;
  border: 1px solid var(--dfw-border); border-radius: 4px; padding: 3px 10px; line-height: 18px; }
.dfw-btn:hover { border-color: var(--dfw-accent); }
.dfw-btn:disabled { opacity: .5; cursor: default; }
.dfw-btn.dfw-primary { background: var(--dfw-accent); border-color: var(--dfw-accent); color: #fff; }
.dfw-seg { display: inline-flex; }
.dfw-seg .dfw-btn { border-radius: 0; margin-left: -1px; }
.dfw-seg .dfw-btn:first-child { border-radius: 4px 0 0 4px; margin-left: 0; }
.dfw-seg .dfw-btn:last-child { border-radius: 0 4px 4px 0; }
.dfw-seg .dfw-btn[aria-pressed="true"] { background: var(--dfw-accent); color: #fff;
  border-color: var(--dfw-accent); position: relative; }
.dfw-input, .dfw-select { font: inherit; color: var(--dfw-fg); background: var(--dfw-bg);
  border: 1px solid var(--dfw-border); border-radius: 4px; padding: 3px 6px; line-height: 18px; }
.dfw-input:focus, .dfw-select:focus { outline: none; border-color: var(--dfw-accent); }
.dfw-msg { padding: 6px 10px; border-top: 1px solid var(--dfw-border); min-height: 30px;
  color: var(--dfw-fg2); display: flex; align-items: center; gap: 8px; }
.dfw-msg[data-kind="error"] { color: var(--dfw-error); }
.dfw-msg[data-kind="ok"] { color: var(--dfw-ok); }
.dfw-kbd { font-family: var(--jp-code-font-family, monospace); font-size: 11px;
  border: 1px solid var(--dfw-border); border-radius: 3px; padding: 0 4px; background: var(--dfw-bg3); }
`;

export const BASE_STYLE_ID = "dfw-base-css";

function addStyle(id, css) {
  if (document.getElementById(id)) return;
  const style = document.createElement("style");
  style.id = id;
  style.textContent = css;
  document.head.appendChild(style);
}

/** Add the shared base CSS (once per page), then a <style> with a widget's own `css`
 * (once per `id`: every view of every instance shares it). */
export function injectStyle(id, css) {
  addStyle(BASE_STYLE_ID, BASE_CSS);
  if (id !== BASE_STYLE_ID) addStyle(id, css);
}

/** document.createElement with class, attributes and children. */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v == null || v === false) continue;
    if (k === "class") el.className = v;
    else if (k === "text") el.textContent = v;
    else if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) if (c != null) el.append(c);
  return el;
}

/** Show an inline message in `el` (kind: "info" | "ok" | "error"). */
export function showMessage(el, text, kind = "info") {
  el.textContent = text || "";
  el.dataset.kind = kind;
}
