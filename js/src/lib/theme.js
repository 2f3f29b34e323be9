// Light/dark theming from JupyterLab CSS variables (--jp-*), with fallbacks outside Lab.

/** Value of CSS variable `name` on `el` (or `fallback`). */
export function cssVar(el, name, fallback) {
  const v = getComputedStyle(el).getPropertyValue(name).trim();
  return v || fallback;
}

let probe = null;
/** Any CSS colour string -> [r, g, b, a] in 0..1 (resolved by the browser). */
export function parseColor(color) {
  if (!probe) {
    probe = document.createElement("canvas").getContext("2d", { willReadFrequently: true });
  }
  probe.clearRect(0, 0, 1, 1);
  probe.fillStyle = "#000";
  probe.fillStyle = color;
  probe.fillRect(0, 0, 1, 1);
  const d = probe.getImageData(0, 0, 1, 1).data;
  return [d[0] / 255, d[1] / 255, d[2] / 255, d[3] / 255];
}

/** True when the background behind `el` is dark. */
export function isDark(el) {
  const [r, g, b] = parseColor(cssVar(el, "--jp-layout-color0", "#ffffff"));
  return 0.299 * r + 0.587 * g + 0.114 * b < 0.5;
}

/** Call `cb()` whenever JupyterLab switches theme; returns an unsubscribe function. */
export function onThemeChange(cb) {
  const obs = new MutationObserver(() => cb());
  obs.observe(document.body, { attributes: true, attributeFilter: ["data-jp-theme-name", "data-jp-theme-light"] });
  // theme CSS loads after the attribute flips: check again shortly after
  const handler = () => setTimeout(cb, 150);
  document.addEventListener("jp-theme-changed", handler);
  return () => { obs.disconnect(); document.removeEventListener("jp-theme-changed", handler); };
}

/** Resolve CSS variable `name` on `el` to a CSS colour string a 2-D canvas accepts. */
export function resolveCss(el, name, fallback) {
  const [r, g, b, a] = resolveColor(el, name, fallback);
  return `rgba(${Math.round(r * 255)}, ${Math.round(g * 255)}, ${Math.round(b * 255)}, ${a})`;
}

/** Resolve CSS variable `name` (which may itself refer to other variables, e.g.
 * `var(--md-blue-700)`) to [r, g, b, a] in 0..1, as WebGL libraries want it. */
export function resolveColor(el, name, fallback) {
  const span = document.createElement("span");
  span.style.display = "none";
  span.style.color = `var(${name}, ${fallback})`;
  el.appendChild(span);
  const rgb = getComputedStyle(span).color;
  span.remove();
  return parseColor(rgb || fallback);
}
