// Placeholder entry; replaced by the EmbeddingMap widget.
function render({ model, el }) {
  el.textContent = "dfwidgets";
}
export default { render };
