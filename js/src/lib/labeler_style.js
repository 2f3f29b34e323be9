// Styles for the Labeler widget. Colours come from JupyterLab's CSS variables so the
// widget follows light and dark themes; the fallbacks are for plain Jupyter / VS Code.
export const labelerCss = `
.dfw-labeler {
  --dfw-bg: var(--jp-layout-color0, #fff);
  --dfw-bg2: var(--jp-layout-color1, #fff);
  --dfw-bg3: var(--jp-layout-color2, #eee);
  --dfw-border: var(--jp-border-color1, #bdbdbd);
  --dfw-border2: var(--jp-border-color2, #e0e0e0);
  --dfw-fg: var(--jp-ui-font-color0, rgba(0,0,0,1));
  --dfw-fg1: var(--jp-ui-font-color1, rgba(0,0,0,0.87));
  --dfw-fg2: var(--jp-ui-font-color2, rgba(0,0,0,0.54));
  --dfw-accent: var(--jp-brand-color1, #1976d2);
  --dfw-accent-bg: var(--jp-brand-color3, #bbdefb);
  --dfw-ok: var(--jp-success-color1, #388e3c);
  --dfw-warn: var(--jp-warn-color1, #f57c00);
  --dfw-err: var(--jp-error-color1, #d32f2f);
  font-family: var(--jp-ui-font-family, system-ui, sans-serif);
  font-size: var(--jp-ui-font-size1, 13px);
  color: var(--dfw-fg1);
  background: var(--dfw-bg);
  border: 1px solid var(--dfw-border2);
  border-radius: 6px;
  padding: 10px 12px;
  max-width: 920px;
  outline: none;
  box-sizing: border-box;
}
.dfw-labeler:focus-visible, .dfw-labeler:focus { border-color: var(--dfw-accent); }
.dfw-labeler * { box-sizing: border-box; }
.dfw-lab-top { display: flex; align-items: center; gap: 12px; flex-wrap: wrap; margin-bottom: 8px; }
.dfw-lab-tabs { display: inline-flex; border: 1px solid var(--dfw-border); border-radius: 5px; overflow: hidden; }
.dfw-lab-tabs button { border: 0; border-right: 1px solid var(--dfw-border); background: var(--dfw-bg2);
  color: var(--dfw-fg1); padding: 4px 12px; cursor: pointer; font: inherit; }
.dfw-lab-tabs button:last-child { border-right: 0; }
.dfw-lab-tabs button.dfw-on { background: var(--dfw-accent); color: #fff; }
.dfw-lab-status { color: var(--dfw-fg2); font-size: var(--jp-ui-font-size1, 13px); display: flex;
  gap: 6px 14px; flex-wrap: wrap; }
.dfw-lab-status b { color: var(--dfw-fg1); font-weight: 600; }
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
  font-family: var(--jp-code-font-family, monospace); font-size: 11px; border: 1px solid var(--dfw-border);
  border-bottom-width: 2px; border-radius: 3px; padding: 0 4px; background: var(--dfw-bg2); color: var(--dfw-fg1); }
.dfw-lab-bar { position: relative; height: 20px; border-radius: 3px; background: var(--dfw-bg3); overflow: hidden; }
.dfw-lab-bar span { position: absolute; inset: 0 auto 0 0; background: color-mix(in srgb, var(--dfw-accent) 38%, transparent); }
.dfw-lab-bar em { position: relative; font-style: normal; padding-left: 6px; line-height: 20px; color: var(--dfw-fg); }
.dfw-lab-pct { text-align: right; color: var(--dfw-fg2); font-variant-numeric: tabular-nums; }
.dfw-lab-none { color: var(--dfw-fg2); font-style: italic; }
.dfw-lab-classes { display: flex; flex-wrap: wrap; gap: 6px; margin-top: 10px; }
.dfw-lab-classes button, .dfw-lab-actions button, .dfw-lab-add button, .dfw-lab-bulk button {
  font: inherit; color: var(--dfw-fg1); background: var(--dfw-bg2); border: 1px solid var(--dfw-border);
  border-radius: 4px; padding: 4px 9px; cursor: pointer; display: inline-flex; gap: 6px; align-items: center; }
.dfw-lab-classes button:hover, .dfw-lab-actions button:hover { border-color: var(--dfw-accent); }
.dfw-lab-classes button.dfw-top { border-color: var(--dfw-accent); box-shadow: inset 0 -2px 0 var(--dfw-accent); }
.dfw-lab-actions { display: flex; gap: 6px; flex-wrap: wrap; }
.dfw-lab-bottom { display: flex; gap: 12px; align-items: center; flex-wrap: wrap; margin-top: 10px;
  padding-top: 8px; border-top: 1px solid var(--dfw-border2); }
.dfw-lab-add, .dfw-lab-bulk { display: inline-flex; gap: 6px; align-items: center; }
.dfw-lab-add input, .dfw-lab-bulk select { font: inherit; color: var(--dfw-fg1); background: var(--dfw-bg);
  border: 1px solid var(--dfw-border); border-radius: 4px; padding: 3px 6px; }
.dfw-lab-help { color: var(--dfw-fg2); font-size: 11px; }
.dfw-lab-msg { margin-top: 8px; padding: 6px 9px; border-radius: 4px; border-left: 3px solid var(--dfw-warn);
  background: var(--dfw-bg3); color: var(--dfw-fg1); }
.dfw-lab-msg.dfw-err { border-left-color: var(--dfw-err); }
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
.dfw-lab-review { font-size: var(--jp-ui-font-size2, 15px); color: var(--dfw-fg1); }
.dfw-lab-review b { color: var(--dfw-fg); }
.dfw-lab-empty { padding: 30px; color: var(--dfw-fg2); text-align: center; }
`;
