"""Jupyter widgets (anywidget), one class per module, each a view over a Session."""
