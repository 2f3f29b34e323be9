// Styles of the Labeler on top of lib/style.js's base (its --dfw-* variables follow
// JupyterLab's light and dark themes; the fallbacks are for plain Jupyter / VS Code).
// Injected once per page with injectStyle().
export const LABELER_CSS_ID = "dfw-labeler-css";
export const labelerCss = `
.dfw-labeler { padding: 10px 12px; max-width: 920px; overflow: visible; }
.dfw-labeler:focus-visible, .dfw-labeler:focus { border-color: var(--dfw-accent); box-shadow: none; }
.dfw-labeler * { box-sizing: border-box; }
.dfw-lab-top { display: flex; align-items: center; gap: 12px; flex-wrap: wrap; margin-bottom: 8px; }
.dfw-lab-tabs { display: inline-flex; border: 1px solid var(--dfw-border1); border-radius: 5px; overflow: hidden; }
.dfw-lab-tabs button { border: 0; border-right: 1px solid var(--dfw-border1); background: var(--dfw-bg2);
  color: var(--dfw-fg); padding: 4px 12px; cursor: pointer; font: inherit; }
.dfw-lab-tabs button:last-child { border-right: 0; }
.dfw-lab-tabs button.dfw-on { background: var(--dfw-accent); color: #fff; }
.dfw-lab-restrict { font: inherit; color: var(--dfw-fg); background: var(--dfw-bg2); cursor: pointer;
  border: 1px solid var(--dfw-border1); border-radius: 5px; padding: 4px 10px; white-space: nowrap; }
.dfw-lab-restrict.dfw-on { background: var(--dfw-accent); border-color: var(--dfw-accent); color: #fff; }
.dfw-lab-restrict:disabled { opacity: .55; cursor: default; }
.dfw-lab-status { color: var(--dfw-fg2); font-size: var(--jp-ui-font-size1, 13px); display: flex;
  gap: 6px 14px; flex-wrap: wrap; }
.dfw-lab-status b { color: var(--dfw-fg); font-weight: 600; }
.dfw-lab-focus { margin-left: auto; font-size: 11px; color: var(--dfw-fg2); }
.dfw-labeler:focus .dfw-lab-focus { color: var(--dfw-ok); }
.dfw-lab-body { display: flex; gap: 16px; align-items: flex-start; min-height: 120px; }
.dfw-lab-stage { flex: none; display: flex; align-items: center; justify-content: center;
  background: var(--dfw-bg3); border-radius: 6px; overflow: hidden; }
.dfw-lab-stage img { display: block; object-fit: contain; }
.dfw-pixelated { image-rendering: pixelated; }
.dfw-lab-side { flex: 1; min-width: 200px; display: flex; flex-direction: column; gap: 10px; }
.dfw-lab-h { font-size: 11px; text-transform: uppercase; letter-spacing: .04em; color: var(--dfw-fg2); margin: 0 0 4px; }
.dfw-lab-guess { display: grid; grid-template-columns: 1.6em 1fr 3.4em; align-items: center; gap: 6px; margin: 3px 0; }
.dfw-lab-guess kbd, .dfw-lab-classes kbd, .dfw-lab-help kbd {
  font-family: var(--jp-code-font-family, monospace); font-size: 11px; border: 1px solid var(--dfw-border1);
  border-bottom-width: 2px; border-radius: 3px; padding: 0 4px; background: var(--dfw-bg2); color: var(--dfw-fg); }
.dfw-lab-bar { position: relative; height: 20px; border-radius: 3px; background: var(--dfw-bg3); overflow: hidden; }
.dfw-lab-bar span { position: absolute; inset: 0 auto 0 0; background: color-mix(in srgb, var(--dfw-accent) 38%, transparent); }
.dfw-lab-bar em { position: relative; font-style: normal; padding-left: 6px; line-height: 20px; color: var(--dfw-fg0); }
.dfw-lab-pct { text-align: right; color: var(--dfw-fg2); font-variant-numeric: tabular-nums; }
.dfw-lab-none { color: var(--dfw-fg2); font-style: italic; }
.dfw-lab-classes { display: flex; flex-wrap: wrap; gap: 6px; margin-top: 10px; }
.dfw-lab-classes button, .dfw-lab-actions button, .dfw-lab-add button, .dfw-lab-bulk button {
  font: inherit; color: var(--dfw-fg); background: var(--dfw-bg2); border: 1px solid var(--dfw-border1);
  border-radius: 4px; padding: 4px 9px; cursor: pointer; display: inline-flex; gap: 6px; align-items: center; }
.dfw-lab-classes button:hover, .dfw-lab-actions button:hover { border-color: var(--dfw-accent); }
.dfw-lab-classes button.dfw-top { border-color: var(--dfw-accent); box-shadow: inset 0 -2px 0 var(--dfw-accent); }
.dfw-lab-actions { display: flex; gap: 6px; flex-wrap: wrap; }
.dfw-lab-bottom { display: flex; gap: 12px; align-items: center; flex-wrap: wrap; margin-top: 10px;
  padding-top: 8px; border-top: 1px solid var(--dfw-border); }
.dfw-lab-add, .dfw-lab-bulk { display: inline-flex; gap: 6px; align-items: center; }
.dfw-lab-add input, .dfw-lab-bulk select { font: inherit; color: var(--dfw-fg); background: var(--dfw-bg);
  border: 1px solid var(--dfw-border1); border-radius: 4px; padding: 3px 6px; }
.dfw-lab-help { color: var(--dfw-fg2); font-size: 11px; }
.dfw-lab-msg { margin-top: 8px; padding: 6px 9px; border-radius: 4px; border-left: 3px solid var(--dfw-warn);
  background: var(--dfw-bg3); color: var(--dfw-fg); }
.dfw-lab-msg.dfw-err { border-left-color: var(--dfw-error); }
.dfw-lab-msg:empty { display: none; }
.dfw-lab-grid { display: grid; grid-template-columns: repeat(auto-fill, minmax(96px, 1fr)); gap: 6px; flex: 1; }
.dfw-lab-cell { position: relative; border: 2px solid transparent; border-radius: 5px; background: var(--dfw-bg3);
  cursor: pointer; aspect-ratio: 1 / 1; overflow: hidden; }
.dfw-lab-cell img { width: 100%; height: 100%; object-fit: contain; display: block; }
.dfw-lab-cell.dfw-cursor { border-color: var(--dfw-accent); }
.dfw-lab-cell.dfw-sel { outline: 3px solid var(--dfw-warn); outline-offset: -3px; }
.dfw-lab-cell.dfw-done img { opacity: .35; }
.dfw-lab-cell .dfw-badge { position: absolute; left: 3px; right: 3px; bottom: 3px; font-size: 11px;
  background: var(--dfw-accent); color: #fff; border-radius: 3px; padding: 1px 4px; white-space: nowrap;
  overflow: hidden; text-overflow: ellipsis; text-align: center; }
.dfw-lab-cell .dfw-badge.dfw-skip { background: var(--dfw-fg2); }
.dfw-lab-cell .dfw-guess { position: absolute; left: 3px; top: 3px; font-size: 10px; color: var(--dfw-fg2);
  background: var(--dfw-bg); border-radius: 3px; padding: 0 3px; opacity: .9; max-width: 90%;
  white-space: nowrap; overflow: hidden; text-overflow: ellipsis; }
.dfw-lab-review { font-size: var(--jp-ui-font-size2, 15px); color: var(--dfw-fg); }
.dfw-lab-review b { color: var(--dfw-fg0); }
.dfw-lab-empty { padding: 30px; color: var(--dfw-fg2); text-align: center; }
`;
