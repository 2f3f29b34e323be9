// Styles of the EmbeddingMap on top of lib/style.js's base; injected once per page.
export const MAP_CSS_ID = "dfw-map-css";
export const MAP_CSS = `
.dfw-map-body { position: relative; width: 100%; background: var(--dfw-bg); }
.dfw-map-body canvas { display: block; width: 100%; height: 100%; }
.dfw-map-body canvas.dfw-map-overlay { position: absolute; inset: 0; pointer-events: none; }
.dfw-map-legend { position: absolute; top: 10px; right: 10px; max-height: calc(100% - 20px);
  overflow: auto; min-width: 140px; padding: 8px 10px; border-radius: 6px;
  background: color-mix(in srgb, var(--dfw-bg2) 88%, transparent);
  border: 1px solid var(--dfw-border); box-shadow: 0 1px 4px rgba(0,0,0,.15); }
.dfw-map-legend-title { font-weight: 600; margin-bottom: 6px; }
.dfw-map-legend-row { display: flex; align-items: center; gap: 8px; line-height: 20px; }
.dfw-map-legend-row .dfw-name { flex: 1; white-space: nowrap; overflow: hidden; text-overflow: ellipsis; max-width: 150px; }
.dfw-map-legend-row .dfw-count { color: var(--dfw-fg2); font-variant-numeric: tabular-nums; }
.dfw-swatch { width: 11px; height: 11px; border-radius: 50%; flex: none; }
.dfw-swatch.dfw-swatch-outline { box-sizing: border-box; border: 1.5px solid var(--dfw-fg); background: var(--dfw-fg2); }
.dfw-swatch.dfw-swatch-ring { box-sizing: border-box; border: 2.5px solid var(--dfw-fg); background: transparent; }
.dfw-map-legend-sep { border-top: 1px solid var(--dfw-border); margin: 4px 0 2px; }
.dfw-ramp { height: 10px; width: 140px; border-radius: 3px; }
.dfw-ramp-ends { display: flex; justify-content: space-between; color: var(--dfw-fg2); font-size: 11px; }
.dfw-map-tip { position: absolute; pointer-events: none; display: none; z-index: 3;
  padding: 6px; border-radius: 6px; background: var(--dfw-bg2); border: 1px solid var(--dfw-border);
  box-shadow: 0 2px 8px rgba(0,0,0,.25); gap: 8px; align-items: flex-start; max-width: 320px; }
.dfw-map-tip img, .dfw-map-pin img { image-rendering: pixelated; border-radius: 4px;
  background: var(--dfw-bg3); }
.dfw-map-info { display: grid; grid-template-columns: auto auto; column-gap: 8px; row-gap: 1px;
  font-size: 12px; white-space: nowrap; }
.dfw-map-info .dfw-k { color: var(--dfw-fg2); }
.dfw-map-pin { position: absolute; left: 10px; bottom: 10px; z-index: 2; display: none;
  padding: 8px; border-radius: 6px; background: var(--dfw-bg2); border: 1px solid var(--dfw-border);
  box-shadow: 0 2px 8px rgba(0,0,0,.25); gap: 10px; align-items: flex-start; }
.dfw-map-pin .dfw-close { border: none; background: none; color: var(--dfw-fg2); cursor: pointer;
  font-size: 16px; line-height: 16px; padding: 0 2px; }
.dfw-map-status { color: var(--dfw-fg2); white-space: nowrap; font-variant-numeric: tabular-nums;
  min-width: 0; max-width: 100%; overflow: hidden; text-overflow: ellipsis; flex: 0 1 auto; }
.dfw-map-selcount { font-weight: 600; white-space: nowrap; font-variant-numeric: tabular-nums; }
.dfw-map .dfw-input { width: 150px; }
`;
export const MAP_CSS_EXTRA = `
.dfw-map-status[data-kind="error"] { color: var(--dfw-error, #c62828); }
.dfw-map-tip img { width: 72px; height: 72px; object-fit: contain; }
`;
