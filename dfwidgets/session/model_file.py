"""The last model of a Session on disk: ``model/last_model.npz`` (+ a readable ``.json``).

Plain arrays and a JSON meta (no pickle), written atomically. At open, a model trained on
exactly the current labels is published as it was (no refit); an older LinearProbe becomes
the warm start of the next fit; a damaged or mismatched file is ignored with a warning.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .fit_worker import align_columns

if TYPE_CHECKING:
    from .session import Session

__all__ = ["MODEL_DIR", "MODEL_FILE", "MODEL_META_FILE", "ModelFile"]

log = logging.getLogger(__name__)

MODEL_DIR = "model"
MODEL_FILE = "last_model.npz"        # arrays + the meta JSON (key "__meta__"); no pickle
MODEL_META_FILE = "last_model.json"  # a readable copy of that meta
MODEL_FORMAT = 1


class ModelFile:
    """Save, check and restore the last model of ``session``'s project folder."""

    def __init__(self, session: Session) -> None:
        self._s = session
        folder = session.path / MODEL_DIR
        self.npz, self.meta_file = folder / MODEL_FILE, folder / MODEL_META_FILE

    def label_fingerprint(self, train: np.ndarray, y: np.ndarray, *, negatives: bool) -> str:
        """Hash of the sorted (item id, class name) pairs trained on (and of the store's
        hard negatives when ``negatives``, as prototypes use them)."""
        s = self._s
        h = hashlib.blake2b(digest_size=16)
        h.update(json.dumps(sorted(zip(s.ids[train].tolist(),
                                       [str(v) for v in y.tolist()]))).encode())
        if negatives:
            neg = s.store.negatives()
            h.update(json.dumps(sorted(zip(neg["item_id"].astype(str).tolist(),
                                           neg["label"].astype(str).tolist()))).encode())
        return h.hexdigest()

    def save(self, model: Any, *, kind: str, train: np.ndarray, y: np.ndarray) -> None:
        """Write the model file atomically; never raises (logs)."""
        from .. import __version__
        from ..learn.models import LinearProbe, PrototypeClassifier

        s = self._s
        if not isinstance(model, (LinearProbe, PrototypeClassifier)):
            log.info("not saving the %s model (its zero-shot part is rebuilt from the class "
                     "names); reopening the project refits it", kind)
            self.remove()
            return
        npz, meta_file = self.npz, self.meta_file
        try:
            arrays, state = model.get_state()
            meta = {
                "format": MODEL_FORMAT, "kind": kind, "model": type(model).__name__,
                "state": state, "classes": list(s.model_classes_),
                "label_fingerprint": self.label_fingerprint(
                    train, y, negatives=isinstance(model, PrototypeClassifier)),
                "n_train": len(train), "embeddings_hash": s._embeddings_hash,
                "smoothing": s.smoothing,
                "dfwidgets_version": __version__, "time": time.time(),
            }
            text = json.dumps(meta, indent=1)
            npz.parent.mkdir(exist_ok=True)
            tag = f"{os.getpid()}.{threading.get_ident()}.tmp"
            tmp = npz.with_name(f".{npz.name}.{tag}")
            with open(tmp, "wb") as f:
                np.savez(f, __meta__=np.array(text), **arrays)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, npz)
            tmp = meta_file.with_name(f".{meta_file.name}.{tag}")
            tmp.write_text(text)
            os.replace(tmp, meta_file)
        except Exception as exc:  # noqa: BLE001 - a full disk must not break labeling
            log.warning("could not save the model to %s (%s: %s); reopening will refit",
                        npz, type(exc).__name__, exc)

    def remove(self) -> None:
        """Delete the model files (missing ones are fine)."""
        for file in (self.npz, self.meta_file):
            try:
                file.unlink(missing_ok=True)
            except OSError as exc:
                log.warning("could not remove %s (%s)", file, exc)

    def read(self, npz: Path) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """(arrays, meta) of a saved model that fits this project; ValueError saying why
        it does not (unreadable, other embeddings or dimensions, unknown classes)."""
        s = self._s
        try:
            with np.load(npz, allow_pickle=False) as data:
                arrays = {k: data[k] for k in data.files}
            meta = json.loads(str(arrays.pop("__meta__")))
        except Exception as exc:  # noqa: BLE001 - any damage: refit
            raise ValueError(f"unreadable ({type(exc).__name__}: {exc})") from None
        if not isinstance(meta, dict) or meta.get("format") != MODEL_FORMAT:
            found = meta.get("format") if isinstance(meta, dict) else type(meta).__name__
            raise ValueError(f"unknown format {found!r} (this dfwidgets writes {MODEL_FORMAT})")
        if meta.get("model") not in ("LinearProbe", "PrototypeClassifier"):
            raise ValueError(f"unsupported model {meta.get('model')!r}")
        state = meta.get("state") or {}
        dim = s.embeddings.shape[1]
        if state.get("n_features_in_") != dim:
            raise ValueError(f"it was fitted on {state.get('n_features_in_')}-dim embeddings, "
                             f"the project's have {dim}")
        if meta.get("embeddings_hash") != s._embeddings_hash:
            raise ValueError("it was fitted on other embeddings than the project's")
        if float(meta.get("smoothing", 0.0)) != s.smoothing:
            raise ValueError(f"it was fitted with smoothing={meta.get('smoothing', 0.0)}, "
                             f"this Session uses {s.smoothing}")
        unknown = set(map(str, state.get("classes_", []))) - set(s._labels.snapshot()[2])
        if unknown:
            raise ValueError(f"its classes {sorted(unknown)} are not in the project "
                             "(renamed or merged since?)")
        return arrays, meta

    def restore(self) -> bool:
        """Load the saved model at open. True when it was trained on exactly the current
        labels: it is published as it was, no refit needed. Otherwise a LinearProbe
        becomes the warm start of the next fit (and is shown until then)."""
        from ..learn.models import LinearProbe, PrototypeClassifier

        s, npz = self._s, self.npz
        if not npz.exists():
            return False
        try:
            arrays, meta = self.read(npz)
            features = s._fit.model_features()
            kind, state = str(meta.get("kind", meta["model"])), meta["state"]
            seq, codes, classes = s._labels.snapshot()
            train = np.flatnonzero((codes >= 0) & ~s._evaluation.audit_mask())
            y = np.asarray(classes, dtype=object)[codes[train]]
            is_probe = meta["model"] == "LinearProbe"
            fresh = meta.get("label_fingerprint") == self.label_fingerprint(
                train, y, negatives=not is_probe)
            if is_probe:  # training data back: predict_proba_mc (BALD) works as before
                model = LinearProbe.from_state(arrays, state, **(
                    {"X": features[train], "y": y} if fresh else {}))
            else:
                model = PrototypeClassifier.from_state(arrays, state)
            probs = align_columns(model.predict_proba(features), list(model.classes_), classes)
        except Exception as exc:  # noqa: BLE001 - never fail open over the model file
            log.warning("ignoring the saved model %s: %s; the model is refitted", npz, exc)
            return False
        if is_probe:
            s._fit.probe = model  # the next fit continues from it
        n_train = int(meta.get("n_train", 0))
        if fresh:
            status = f"{kind} on {n_train} labels (restored)"
        elif len(set(y.tolist())) >= 2:
            status = (f"{kind} on {n_train} labels (restored; the labels changed since, "
                      + ("refitting)" if s.auto_fit else "call fit() to update)"))
        else:
            log.info("saved model %s is out of date and cannot be refitted yet", npz)
            return False
        s._fit.publish(seq, model, probs, classes, status)
        log.info("model restored from %s (%s)", npz, status)
        return fresh
