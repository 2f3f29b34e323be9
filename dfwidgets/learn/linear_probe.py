"""LinearProbe: softmax regression on embeddings, in torch, fast enough to refit per label."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassifierMixin

from ._checks import check_embeddings, check_labels, encode_labels

__all__ = ["LinearProbe"]

log = logging.getLogger(__name__)


class LinearProbe(ClassifierMixin, BaseEstimator):
    """Multinomial logistic regression on (N, D) embeddings, fitted with full-batch L-BFGS
    (scipy's L-BFGS-B driving torch matmuls).

    The objective is sklearn's: ``C * sum_i w_i * CE_i + 0.5 * ||W||^2`` on standardised
    features (the bias is not penalised), with ``w`` class-balanced weights by default.

    Parameters (keyword-only)
    -------------------------
    C : inverse L2 strength, as in ``sklearn.linear_model.LogisticRegression``.
    class_weight : ``"balanced"`` (each class present counts equally) or ``None``.
    classes : fixed class list and column order; a class with no examples yet still gets a
        column. ``None``: the sorted unique labels of ``y``.
    warm_start : start from the previous fit's weights (rows of classes that already
        existed are copied, new classes start at zero), so refits after a few more labels
        take a handful of iterations.
    max_iter, tol : L-BFGS iteration cap; stop when the loss changes by less than ``tol``
        (relative), i.e. on a training-loss plateau.
    early_stopping : ``"plateau"`` (stop on a training-loss plateau, uses all labels) or
        ``"validation"`` (hold out ``validation_fraction`` of the labels, stop when the
        validation loss stops falling, keep the best weights).
    n_members : size of the bootstrap ensemble behind :meth:`predict_proba_mc` (for BALD);
        the members are fitted lazily on the first call after each ``fit``.
    random_state : seed for the validation split and the bootstrap.

    Fitted attributes: ``classes_`` (K,), ``coef_`` (K, D) and ``intercept_`` (K,) in the
    raw embedding space, ``n_features_in_``, ``n_iter_``, ``loss_``.
    """

    def __init__(
        self,
        *,
        C: float = 0.1,
        class_weight: Literal["balanced"] | None = "balanced",
        classes: Sequence[Any] | None = None,
        warm_start: bool = True,
        max_iter: int = 100,
        tol: float = 1e-4,
        early_stopping: Literal["plateau", "validation"] = "plateau",
        validation_fraction: float = 0.15,
        n_members: int = 8,
        random_state: int | None = 0,
    ) -> None:
        self.C = C
        self.class_weight = class_weight
        self.classes = classes
        self.warm_start = warm_start
        self.max_iter = max_iter
        self.tol = tol
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_members = n_members
        self.random_state = random_state

    # ------------------------------------------------------------------ fitting
    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> LinearProbe:
        """Fit on embeddings ``X`` (N, D) and labels ``y`` (N,) (strings or ints);
        ``sample_weight`` (N,) >= 0 multiplies each label's (class-balanced) weight.
        One label of a class is enough for it to get a trained column."""
        self._check_params()
        X = check_embeddings(X, name="X")
        y = check_labels(y, len(X))
        sw = None
        if sample_weight is not None:
            sw = np.asarray(sample_weight, dtype=np.float32).reshape(-1)
            if sw.shape != (len(X),) or not np.isfinite(sw).all() or (sw < 0).any():
                raise ValueError(f"sample_weight must be {len(X)} finite weights >= 0; "
                                 f"got shape {sw.shape}")
        classes_, codes = encode_labels(y, self.classes)
        K = len(classes_)
        counts = np.bincount(codes, minlength=K)
        present = np.flatnonzero(counts)
        if len(present) < 2:
            only = classes_[present[0]] if len(present) else None
            raise ValueError(
                f"LinearProbe needs labeled examples of at least 2 classes; got only {only!r} "
                f"({len(y)} labels). Label an example of another class first."
            )

        # centre per dimension, one global scale: per-dimension scaling would blow up
        # low-variance (noise) directions when only a few labels are in
        mean = X.mean(axis=0, dtype=np.float64)
        rms = float(np.sqrt(X.var(axis=0, dtype=np.float64).mean()))
        scale = np.full(X.shape[1], rms if rms > 1e-12 else 1.0)
        Xt = torch.from_numpy(X)
        mean_t = torch.from_numpy(mean.astype(np.float32))
        scale_t = torch.from_numpy(scale.astype(np.float32))
        Xs = (Xt - mean_t) / scale_t
        yt = torch.from_numpy(codes)

        W0, b0 = self._initial_weights(classes_, X.shape[1], mean_t, scale_t)
        weights = self._sample_weights(codes, counts)
        if sw is not None:
            weights = weights * torch.from_numpy(sw)

        if self.early_stopping == "validation" and len(y) >= 20:
            W, b, n_iter, loss = self._fit_with_validation(Xs, yt, weights, W0, b0)
        else:
            W, b, n_iter, loss = _lbfgs(
                Xs, yt, weights, W0, b0, C=self.C, max_iter=self.max_iter, tol=self.tol
            )

        # back to the raw embedding space so predict is a single matmul
        coef = W / scale_t
        intercept = b - coef @ mean_t
        self.classes_ = classes_
        self.coef_ = coef.numpy().astype(np.float32)
        self.intercept_ = intercept.numpy().astype(np.float32)
        self.n_features_in_ = X.shape[1]
        self.n_iter_ = n_iter
        self.loss_ = loss
        self.class_counts_ = counts
        # kept for the lazily fitted bootstrap members (dropped when pickled)
        self._train = (Xs, yt, W, b, counts)
        self._sw = sw
        self._members: list[tuple[torch.Tensor, torch.Tensor]] | None = None
        self._standardise = (mean_t, scale_t)
        log.debug("LinearProbe fit: n=%d K=%d iters=%d loss=%.4f", len(y), K, n_iter, loss)
        return self

    def _check_params(self) -> None:
        if not self.C > 0:
            raise ValueError(f"C must be > 0; got {self.C}")
        if self.class_weight not in ("balanced", None):
            raise ValueError(f"class_weight must be 'balanced' or None; got {self.class_weight!r}")
        if self.early_stopping not in ("plateau", "validation"):
            raise ValueError(
                f"early_stopping must be 'plateau' or 'validation'; got {self.early_stopping!r}"
            )
        if not 0 < self.validation_fraction < 0.5:
            raise ValueError(f"validation_fraction must be in (0, 0.5); got {self.validation_fraction}")

    def _sample_weights(self, codes: np.ndarray, counts: np.ndarray) -> torch.Tensor:
        if self.class_weight is None:
            return torch.ones(len(codes), dtype=torch.float32)
        n_present = int((counts > 0).sum())
        per_class = np.zeros(len(counts), dtype=np.float32)
        nz = counts > 0
        per_class[nz] = len(codes) / (n_present * counts[nz])
        return torch.from_numpy(per_class[codes])

    def _initial_weights(self, classes_: np.ndarray, dim: int, mean: torch.Tensor,
                         scale: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        K = len(classes_)
        W = torch.zeros(K, dim)
        b = torch.zeros(K)
        if not (self.warm_start and hasattr(self, "coef_")) or self.coef_.shape[1] != dim:
            return W, b
        old = {c: i for i, c in enumerate(self.classes_.tolist())}
        coef = torch.from_numpy(self.coef_)
        intercept = torch.from_numpy(self.intercept_)
        for new_i, c in enumerate(classes_.tolist()):
            old_i = old.get(c)
            if old_i is not None:  # raw -> new standardised space: exact same function
                W[new_i] = coef[old_i] * scale
                b[new_i] = intercept[old_i] + coef[old_i] @ mean
        return W, b

    def _fit_with_validation(self, Xs: torch.Tensor, yt: torch.Tensor, weights: torch.Tensor,
                             W0: torch.Tensor, b0: torch.Tensor
                             ) -> tuple[torch.Tensor, torch.Tensor, int, float]:
        rng = np.random.default_rng(self.random_state)
        n = len(yt)
        perm = rng.permutation(n)
        n_val = max(1, round(self.validation_fraction * n))
        val, train = perm[:n_val], perm[n_val:]
        Xv, yv = Xs[val], yt[val]
        W, b = W0.clone(), b0.clone()
        best = (W.clone(), b.clone(), float("inf"))
        total_iter, bad_rounds, loss = 0, 0, float("nan")
        for _ in range(max(1, self.max_iter // 10)):
            W, b, it, loss = _lbfgs(
                Xs[train], yt[train], weights[train], W, b, C=self.C, max_iter=10, tol=self.tol
            )
            total_iter += it
            with torch.no_grad():
                val_loss = float(torch.nn.functional.cross_entropy(Xv @ W.T + b, yv))
            if val_loss < best[2] - 1e-6:
                best, bad_rounds = (W.clone(), b.clone(), val_loss), 0
            else:
                bad_rounds += 1
            if bad_rounds >= 2 or it < 10:
                break
        return best[0], best[1], total_iter, loss

    # --------------------------------------------------------------- predicting
    def _check_fitted(self) -> None:
        if not hasattr(self, "coef_"):
            raise RuntimeError("this LinearProbe is not fitted yet; call fit(X, y) first")

    def decision_function(self, X: Any) -> np.ndarray:
        """Logits, (N, K) float32."""
        self._check_fitted()
        X = check_embeddings(X, name="X", dim=self.n_features_in_, allow_empty=True)
        with torch.inference_mode():
            logits = torch.from_numpy(X) @ torch.from_numpy(self.coef_).T
            logits += torch.from_numpy(self.intercept_)
        return logits.numpy()

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities, (N, K) float32, columns in ``classes_`` order."""
        logits = torch.from_numpy(self.decision_function(X))
        with torch.inference_mode():
            return torch.softmax(logits, dim=1).numpy()

    def predict(self, X: Any) -> np.ndarray:
        """Most probable class per row, (N,)."""
        return self.classes_[self.decision_function(X).argmax(axis=1)]

    def predict_proba_mc(self, X: Any, n: int | None = None) -> np.ndarray:
        """Probabilities from a bootstrap ensemble, (S, N, K) float32 with S = ``n``.

        Each member is the probe refitted (warm-started) on a bootstrap resample of the
        training labels; their disagreement is the epistemic uncertainty BALD needs.
        """
        self._check_fitted()
        n = self.n_members if n is None else n
        if n < 2:
            raise ValueError(f"predict_proba_mc needs n >= 2 ensemble members; got {n}")
        if getattr(self, "_train", None) is None:
            raise RuntimeError(
                "this LinearProbe was unpickled without its training data; refit it before "
                "calling predict_proba_mc"
            )
        members = self._fit_members(n)
        X = check_embeddings(X, name="X", dim=self.n_features_in_, allow_empty=True)
        mean, scale = self._standardise
        Xt = torch.from_numpy(X)
        out = np.empty((n, len(X), len(self.classes_)), dtype=np.float32)
        with torch.inference_mode():
            for s, (W, b) in enumerate(members[:n]):
                coef = W / scale
                logits = Xt @ coef.T + (b - coef @ mean)
                out[s] = torch.softmax(logits, dim=1).numpy()
        return out

    def _fit_members(self, n: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
        if self._members is not None and len(self._members) >= n:
            return self._members
        Xs, yt, W, b, counts = self._train
        rng = np.random.default_rng(self.random_state)
        members = []
        codes = yt.numpy()
        for _ in range(n):
            idx = rng.integers(0, len(codes), size=len(codes))
            sub_codes = codes[idx]
            sub_counts = np.bincount(sub_codes, minlength=len(counts))
            weights = self._sample_weights(sub_codes, sub_counts)
            if getattr(self, "_sw", None) is not None:
                weights = weights * torch.from_numpy(self._sw[idx])
            Wm, bm, _, _ = _lbfgs(
                Xs[idx], yt[idx], weights, W, b, C=self.C, max_iter=min(self.max_iter, 30),
                tol=self.tol,
            )
            members.append((Wm, bm))
        self._members = members
        return members

    # ------------------------------------------------------------ saving state
    def get_state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """The fitted model as plain arrays + JSON-able meta (no pickle), for
        :meth:`from_state`. Arrays: ``coef_`` (K, D), ``intercept_`` (K,), ``mean_`` and
        ``scale_`` (D,) (the standardisation), ``coef_std`` (K, D) and ``intercept_std``
        (K,) (weights in the standardised space, the start of the bootstrap members),
        ``class_counts_`` (K,). Meta: ``estimator``, ``params``, ``classes_``,
        ``n_features_in_``, ``n_iter_``, ``loss_``."""
        self._check_fitted()
        mean, scale = self._standardise
        if getattr(self, "_train", None) is not None:
            W, b = self._train[2], self._train[3]
        else:  # unpickled: the same function, from the raw-space weights
            W = torch.from_numpy(self.coef_) * scale
            b = torch.from_numpy(self.intercept_) + torch.from_numpy(self.coef_) @ mean
        arrays = {
            "coef_": self.coef_, "intercept_": self.intercept_,
            "mean_": mean.numpy().astype(np.float32), "scale_": scale.numpy().astype(np.float32),
            "coef_std": W.numpy().astype(np.float32), "intercept_std": b.numpy().astype(np.float32),
            "class_counts_": np.asarray(self.class_counts_, dtype=np.int64),
        }
        params = self.get_params()
        if params.get("classes") is not None:
            params["classes"] = np.asarray(list(params["classes"])).tolist()
        meta = {"estimator": type(self).__name__, "params": params,
                "classes_": self.classes_.tolist(), "n_features_in_": int(self.n_features_in_),
                "n_iter_": int(self.n_iter_), "loss_": float(self.loss_)}
        return arrays, meta

    @classmethod
    def from_state(cls, arrays: dict[str, np.ndarray], meta: dict[str, Any], *,
                   X: Any = None, y: Any = None) -> LinearProbe:
        """A fitted LinearProbe from :meth:`get_state` output; ValueError naming what is
        missing or inconsistent. Pass the training data ``X`` (n, D), ``y`` (n,) to make
        :meth:`predict_proba_mc` (BALD) work again; predicting needs neither."""
        if meta.get("estimator") != cls.__name__:
            raise ValueError(f"state is for {meta.get('estimator')!r}, not {cls.__name__}")
        try:
            probe = cls(**dict(meta.get("params") or {}))
            classes_ = np.asarray(meta["classes_"])
            K, D = len(classes_), int(meta["n_features_in_"])
            shapes = {"coef_": (K, D), "intercept_": (K,), "mean_": (D,), "scale_": (D,),
                      "coef_std": (K, D), "intercept_std": (K,), "class_counts_": (K,)}
            got = {k: np.asarray(arrays[k]) for k in shapes}
        except (KeyError, TypeError) as exc:
            raise ValueError(f"incomplete LinearProbe state: {exc!r} is missing or wrong; "
                             "refit the model") from None
        for name, shape in shapes.items():
            if got[name].shape != shape:
                raise ValueError(f"LinearProbe state: {name} has shape {got[name].shape}, "
                                 f"expected {shape} for {K} classes and {D} dims; refit")
            if got[name].dtype.kind == "f" and not np.isfinite(got[name]).all():
                raise ValueError(f"LinearProbe state: {name} has NaN/inf values; refit")
        if not (got["scale_"] > 0).all():
            raise ValueError("LinearProbe state: scale_ must be positive; refit")
        probe.classes_ = classes_
        probe.coef_ = np.ascontiguousarray(got["coef_"], dtype=np.float32)
        probe.intercept_ = np.ascontiguousarray(got["intercept_"], dtype=np.float32)
        probe.n_features_in_ = D
        probe.n_iter_ = int(meta.get("n_iter_", 0))
        probe.loss_ = float(meta.get("loss_", float("nan")))
        probe.class_counts_ = got["class_counts_"].astype(np.int64)
        mean_t = torch.from_numpy(np.ascontiguousarray(got["mean_"], dtype=np.float32))
        scale_t = torch.from_numpy(np.ascontiguousarray(got["scale_"], dtype=np.float32))
        probe._standardise = (mean_t, scale_t)
        probe._members = None
        probe._train = None
        if X is not None and y is not None:
            X = check_embeddings(X, name="X", dim=D)
            y = check_labels(y, len(X))
            _, codes = encode_labels(y, classes_)
            W = torch.from_numpy(np.ascontiguousarray(got["coef_std"], dtype=np.float32))
            b = torch.from_numpy(np.ascontiguousarray(got["intercept_std"], dtype=np.float32))
            Xs = (torch.from_numpy(X) - mean_t) / scale_t
            probe._train = (Xs, torch.from_numpy(codes), W, b,
                            np.bincount(codes, minlength=K))
        return probe

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_train"] = None
        state["_members"] = None
        return state


def _lbfgs(Xs: torch.Tensor, yt: torch.Tensor, weights: torch.Tensor, W0: torch.Tensor,
           b0: torch.Tensor, *, C: float, max_iter: int, tol: float
           ) -> tuple[torch.Tensor, torch.Tensor, int, float]:
    """Minimise mean weighted CE + ||W||^2 / (2 C sum(w)); returns (W, b, n_iter, loss).

    scipy's L-BFGS-B drives the search; loss and analytic gradient are torch matmuls.
    (``torch.optim.LBFGS`` would work too, but its first use imports ``torch._dynamo``,
    several seconds the user would wait for their first model.)
    """
    from scipy.optimize import minimize

    K, D = W0.shape
    wsum = float(weights.sum())
    l2 = 1.0 / (2.0 * C * wsum)
    w_norm = (weights / wsum)[:, None]
    onehot = torch.nn.functional.one_hot(yt, K).to(torch.float32)

    def loss_and_grad(theta: np.ndarray) -> tuple[float, np.ndarray]:
        t = torch.from_numpy(theta.astype(np.float32))
        W, b = t[: K * D].view(K, D), t[K * D :]
        with torch.no_grad():
            logits = torch.addmm(b, Xs, W.T)
            logp = torch.log_softmax(logits, dim=1)
            loss = -(w_norm[:, 0] * (logp * onehot).sum(dim=1)).sum() + l2 * (W * W).sum()
            G = (logp.exp() - onehot) * w_norm  # (N, K)
            gW = G.T @ Xs + 2.0 * l2 * W
            gb = G.sum(dim=0)
        return float(loss), torch.cat([gW.reshape(-1), gb]).numpy().astype(np.float64)

    theta0 = torch.cat([W0.reshape(-1), b0]).numpy().astype(np.float64)
    res = minimize(loss_and_grad, theta0, jac=True, method="L-BFGS-B",
                   options={"maxiter": max(int(max_iter), 1), "ftol": tol, "gtol": 1e-6,
                            "maxcor": 20})
    theta = torch.from_numpy(res.x.astype(np.float32))
    return theta[: K * D].view(K, D).clone(), theta[K * D :].clone(), int(res.nit), float(res.fun)
