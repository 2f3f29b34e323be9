// DOM and CSS of the TrainerCharts view: rows of chart boxes that share a row and wrap
// below their minimum width (--dfw-chart-min), each with its plotly div and an error line.
// The theme colours of the plots' text come from the Trainer's CSS (plot_style.plot_css).

export const CHARTS_CSS = `
.dfw-charts { display: flex; flex-direction: column; gap: 6px; width: 100%; }
.dfw-charts-row { display: flex; flex-flow: row wrap; gap: 6px; width: 100%; }
.dfw-chart { flex: 1 1 var(--dfw-chart-min, 300px); min-width: 0; max-width: 100%;
  position: relative; }
.dfw-chart-plot { width: 100%; min-height: 40px; }
.dfw-chart-error { display: none; margin: 4px 0; padding: 6px 8px; border-radius: 4px;
  font-size: 13px; color: var(--jp-error-color1, #d32f2f);
  border: 1px solid var(--jp-error-color1, #d32f2f); white-space: pre-wrap; }
.dfw-chart.dfw-chart-failed .dfw-chart-error { display: block; }
.dfw-charts .js-plotly-plot .modebar-container { display: none !important; }
`;

function div(cls) {
  const d = document.createElement("div");
  d.className = cls;
  return d;
}

/**
 * rows: [[name, ...], ...] -> {root, boxes: Map(name -> {el, plot, error})}. Each chart's
 * plot div has data-chart=name (and data-version once drawn).
 */
export function chartRows(rows) {
  const root = div("dfw-charts");
  const boxes = new Map();
  for (const names of rows || []) {
    const row = div("dfw-charts-row");
    for (const name of names) {
      const el = div(`dfw-chart dfw-chart-${name}`);
      const plot = div("dfw-chart-plot");
      plot.dataset.chart = name;
      const error = div("dfw-chart-error");
      error.setAttribute("role", "alert");
      el.append(error, plot);
      row.appendChild(el);
      boxes.set(name, { el, plot, error });
    }
    root.appendChild(row);
  }
  return { root, boxes };
}

/** Show `text` in the chart's box (a drawing failed); the last good drawing stays below. */
export function showChartError(box, text) {
  if (!box) return;
  box.error.textContent = text;
  box.el.classList.add("dfw-chart-failed");
}

export function clearChartError(box) {
  if (!box) return;
  box.error.textContent = "";
  box.el.classList.remove("dfw-chart-failed");
}
