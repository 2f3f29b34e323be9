// VisualSearch's own CSS (on top of lib/style.js BASE_CSS), injected once per page.

export const VISUAL_SEARCH_CSS = `
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
.dfw-vs .dfw-vs-ex-item img { width: 100%; height: 100%; object-fit: contain; }
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
.dfw-vs .dfw-vs-img { width: var(--dfw-thumb); height: var(--dfw-thumb); background: var(--dfw-bg3);
  border-radius: 3px; overflow: hidden; }
.dfw-vs .dfw-vs-img img { width: 100%; height: 100%; object-fit: contain; display: block; }
.dfw-vs .dfw-vs-hint { font-size: 12px; color: var(--dfw-fg2); padding: 6px 10px 0; }
.dfw-vs .dfw-vs-thr-box { white-space: nowrap; display: inline-flex; align-items: center; gap: 6px; }
.dfw-vs .dfw-tile .dfw-sim { font-size: 12px; color: var(--dfw-fg2); font-variant-numeric: tabular-nums; }
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
.dfw-vs .dfw-vs-leftout { flex: 1 0 100%; color: var(--dfw-fg2); }
.dfw-vs .dfw-vs-prop-body { display: flex; flex-wrap: wrap; gap: 16px; align-items: flex-start; }
.dfw-vs .dfw-vs-levels { display: flex; flex-direction: column; gap: 4px; }
.dfw-vs .dfw-vs-level { display: flex; gap: 4px; align-items: center; flex-wrap: wrap; }
.dfw-vs .dfw-vs-level > span { width: 70px; color: var(--dfw-fg2); font-size: 11px; }
.dfw-vs .dfw-vs-sample { display: flex; flex-direction: column; align-items: center; width: 52px;
  font-size: 10px; color: var(--dfw-fg2); }
.dfw-vs .dfw-vs-sample .dfw-vs-simg { width: 40px; height: 40px; border-radius: 3px; overflow: hidden;
  background: var(--dfw-bg3); }
.dfw-vs .dfw-vs-sample img { width: 100%; height: 100%; object-fit: contain; display: block; }
.dfw-vs .dfw-vs-sample b { color: var(--dfw-fg); font-weight: 500; max-width: 52px; overflow: hidden;
  text-overflow: ellipsis; white-space: nowrap; }
`;
