// Keyboard map of the Labeler. Class keys come from Python (the `keys` trait: 1-9, 0,
// then letters); these are the fixed action keys.

export const SKIP_KEYS = new Set([" ", "s"]);
export const UNDO_KEYS = new Set(["z", "Backspace"]);
export const ARROWS = { ArrowLeft: [-1, 0], ArrowRight: [1, 0], ArrowUp: [0, -1], ArrowDown: [0, 1] };

/**
 * What a keydown means: {kind: "class"|"skip"|"undo"|"confirm"|"move", key, cls?, dx?, dy?}
 * or null when the key is not ours (typing in a text box, modifier shortcuts, repeats).
 */
export function keyAction(event, keys, classes) {
  if (event.ctrlKey || event.metaKey || event.altKey) return null;
  const tag = event.target && event.target.tagName;
  if (tag === "INPUT" || tag === "SELECT" || tag === "TEXTAREA") return null;
  const key = event.key.length === 1 ? event.key.toLowerCase() : event.key;
  if (key in ARROWS) return { kind: "move", key, dx: ARROWS[key][0], dy: ARROWS[key][1] };
  if (event.repeat) return { kind: "ignore", key };
  if (UNDO_KEYS.has(key)) return { kind: "undo", key };
  if (SKIP_KEYS.has(key)) return { kind: "skip", key };
  if (key === "Enter") return { kind: "confirm", key };
  const j = keys.indexOf(key);
  if (j >= 0 && key !== "") return { kind: "class", key, cls: classes[j] };
  return null;
}
