// Keep keys and the scroll wheel inside a widget: JupyterLab shortcuts (e.g. "a", "b",
// "dd") and notebook scrolling must not fire while the user works in the widget.

/** Make `el` the widget root: focusable, shortcuts suppressed, key/wheel isolated.
 * `wheelTarget` also gets preventDefault so the page does not scroll. Returns a function
 * that removes these listeners again. */
export function isolateKeys(el, { wheelTarget = null } = {}) {
  el.tabIndex = 0;
  el.setAttribute("data-lm-suppress-shortcuts", "true");
  const stop = (e) => e.stopPropagation();
  const noScroll = (e) => e.preventDefault();
  // focus on pointer down so keys (Esc, shortcuts) go to the widget
  const focus = (e) => {
    if (!(e.target instanceof HTMLInputElement || e.target instanceof HTMLSelectElement ||
          e.target instanceof HTMLButtonElement)) el.focus({ preventScroll: true });
  };
  const added = [];
  const on = (target, type, fn, opts) => {
    target.addEventListener(type, fn, opts);
    added.push(() => target.removeEventListener(type, fn, opts));
  };
  for (const type of ["keydown", "keyup", "keypress"]) on(el, type, stop);
  on(el, "wheel", stop, { passive: true });
  // JupyterLab's notebook treats Shift+mousedown on a cell as "extend the cell selection"
  // and then swallows every mousemove (capture phase): keep mouse presses in the widget.
  on(el, "mousedown", stop);
  if (wheelTarget) on(wheelTarget, "wheel", noScroll, { passive: false });
  on(el, "pointerdown", focus);
  return () => added.splice(0).forEach((off) => off());
}

/** True on macOS (use Cmd instead of Ctrl as the "add" modifier). */
export const isMac = typeof navigator !== "undefined" && /Mac|iPhone|iPad/.test(navigator.platform || "");
