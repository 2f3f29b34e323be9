"""Embedder implementations (private); the public API is :mod:`dfwidgets.embed`."""
