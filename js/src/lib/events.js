// Model listeners that go away with the view: `const ev = listeners(model);
// ev.on("change:x", fn); ... return () => ev.off();` (anywidget calls the function that
// render() returns when the view is removed).

/** A bag of model listeners; `off()` removes every one of them. */
export function listeners(model) {
  const offs = [];
  return {
    on(name, fn) {
      model.on(name, fn);
      offs.push(() => model.off(name, fn));
    },
    off() {
      offs.splice(0).forEach((off) => off());
    },
  };
}
