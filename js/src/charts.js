// TrainerCharts view: the Trainer's four plotly charts in one anywidget. Python builds each
// figure with plotly (go.Figure) and keeps its JSON (data + layout) and a version number in
// one synced trait per chart; this view draws it with Plotly.react and marks the chart's
// element with data-version once drawn, so the page shows which drawing it holds. Clicks on
// a bar or a heatmap cell go back to Python as {type: "click", chart, x, y}. plotly.js (its
// cartesian partial bundle) is evaluated on the first render, not when the module loads, so
// anywidget's 2 s limit on loading a widget's module is not spent on it.
import { injectStyle } from "./lib/style.js";
import { listeners } from "./lib/events.js";
import { CHARTS_CSS, chartRows, showChartError, clearChartError } from "./lib/charts_view.js";

let plotlyPromise = null;
/** plotly.js, evaluated once per module (esbuild inlines this import: no network). */
function loadPlotly() {
  if (!plotlyPromise) {
    plotlyPromise = import("plotly.js-cartesian-dist-min").then((m) => m.default || m);
  }
  return plotlyPromise;
}

const CONFIG = { displayModeBar: false, responsive: false, displaylogo: false };

function render({ model, el }) {
  injectStyle("dfw-charts-css", CHARTS_CSS);
  const ev = listeners(model);
  const { root, boxes } = chartRows(model.get("rows"));
  root.style.setProperty("--dfw-chart-min", `${model.get("min_width")}px`);
  el.appendChild(root);
  let removed = false;
  const chains = new Map(); // chart -> promise of its drawings, one at a time, in order

  /** Draw chart `name` from the model's current state (the newest drawing). */
  async function drawNow(Plotly, name) {
    const box = boxes.get(name);
    const spec = model.get(name);
    if (removed || !box || !spec || !spec.figure) return;
    const gd = box.plot;
    const version = spec.version;
    if (gd.dataset.version === String(version)) return;
    try {
      const figure = spec.figure;
      const layout = { ...(figure.layout || {}), autosize: true };
      delete layout.width;
      await Plotly.react(gd, figure.data || [], layout, CONFIG);
      if (!gd.dataset.clicks) {
        gd.dataset.clicks = "1";
        gd.on("plotly_click", (e) => {
          const p = e && e.points && e.points[0];
          if (p) model.send({ type: "click", chart: name, x: p.x, y: p.y });
        });
      }
      clearChartError(box);
      gd.dataset.version = String(version);
      model.send({ type: "drawn", chart: name, version });
    } catch (err) {
      const text = `The chart could not be drawn: ${err && err.message ? err.message : err}`;
      showChartError(box, text);
      console.error(`[dfwidgets] ${name}:`, err);
      model.send({ type: "error", chart: name, version, message: text });
    }
  }

  function draw(name) {
    const prev = chains.get(name) || Promise.resolve();
    const next = prev.then(() => loadPlotly()).then((Plotly) => drawNow(Plotly, name))
      .catch((err) => showChartError(boxes.get(name), `plotly.js did not load: ${err.message}`));
    chains.set(name, next);
  }

  function applyHidden() {
    const hidden = new Set(model.get("hidden"));
    for (const [name, box] of boxes) {
      const was = box.el.style.display === "none";
      box.el.style.display = hidden.has(name) ? "none" : "";
      if (was && !hidden.has(name)) resize(name);
    }
  }

  function resize(name) {
    const gd = boxes.get(name).plot;
    if (!removed && gd.dataset.version !== undefined && gd.offsetWidth > 0) {
      loadPlotly().then((Plotly) => Plotly.Plots.resize(gd)).catch(() => {});
    }
  }

  const observer = new ResizeObserver((entries) => {
    for (const entry of entries) resize(entry.target.dataset.chart);
  });
  for (const [name, box] of boxes) {
    observer.observe(box.plot);
    ev.on(`change:${name}`, () => draw(name));
    draw(name);
  }
  ev.on("change:hidden", applyHidden);
  applyHidden();

  return () => {
    removed = true;
    observer.disconnect();
    ev.off();
    loadPlotly().then((Plotly) => { for (const box of boxes.values()) Plotly.purge(box.plot); })
      .catch(() => {});
  };
}

export default { render };
