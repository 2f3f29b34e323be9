// Keep keys and the scroll wheel inside a widget: JupyterLab shortcuts (e.g. "a", "b",
// "dd") and notebook scrolling must not fire while the user works in the widget.

/** Make `el` the widget root: focusable, shortcuts suppressed, key/wheel isolated.
 * `wheelTarget` (default: el) also gets preventDefault so the page does not scroll. */
export function isolateKeys(el, { wheelTarget = null } = {}) {
  el.tabIndex = 0;
  el.setAttribute("data-lm-suppress-shortcuts", "true");
  const stop = (e) => e.stopPropagation();
  for (const type of ["keydown", "keyup", "keypress"]) el.addEventListener(type, stop);
  el.addEventListener("wheel", stop, { passive: true });
  // JupyterLab's notebook treats Shift+mousedown on a cell as "extend the cell selection"
  // and then swallows every mousemove (capture phase): keep mouse presses in the widget.
  el.addEventListener("mousedown", stop);
  if (wheelTarget) {
    wheelTarget.addEventListener("wheel", (e) => e.preventDefault(), { passive: false });
  }
  // focus on pointer down so keys (Esc, shortcuts) go to the widget
  el.addEventListener("pointerdown", (e) => {
    if (!(e.target instanceof HTMLInputElement || e.target instanceof HTMLSelectElement ||
          e.target instanceof HTMLButtonElement)) el.focus({ preventScroll: true });
  });
}

/** True on macOS (use Cmd instead of Ctrl as the "add" modifier). */
export const isMac = typeof navigator !== "undefined" && /Mac|iPhone|iPad/.test(navigator.platform || "");
