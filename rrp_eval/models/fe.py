"""Poisson regression with ward fixed effects absorbed, for panels of any national size.

A design ``[A, W]``: ``A`` a sparse matrix of the columns of interest (treatment columns,
calendar-month dummies, a trend, harmonics; at most a few hundred), ``W`` one dummy per ward.
Because each row belongs to one ward, the ward block of X'WX is diagonal, so the normal
equations are solved through the Schur complement of that block: time and memory grow with
the ward-months plus (columns of A) x wards, never with ward-months x wards as a dense dummy
design does (at 1,500 wards the dense design no longer fits in 24 GB).

The estimates are the Poisson maximum-likelihood ones a GLM with a dummy per ward gives (the
tests check them against statsmodels' GLM and GEE on the dense design); fixest's ``fepois``
and pyfixest absorb fixed effects by alternating projections instead, which gives the same
coefficients but not the full covariance the event study's delta method needs (docs/methods.md).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import sparse, special
from scipy.linalg import cho_factor, cho_solve


@dataclass
class BlockHessian:
    """X'WX in blocks: ``a`` (the A columns, dense), ``b`` (their cross-products with the
    wards) and the ward block's diagonal ``d``."""

    a: np.ndarray
    b: np.ndarray
    d: np.ndarray
    _factor: Any = None

    def __post_init__(self) -> None:
        schur = self.schur()
        try:
            self._factor = ("cho", cho_factor(schur, lower=False, check_finite=False))
        except np.linalg.LinAlgError:  # collinear columns of A: the minimum-norm solution
            self._factor = ("pinv", np.linalg.pinv(schur, hermitian=True))

    def schur(self) -> np.ndarray:
        return self.a - (self.b / self.d) @ self.b.T

    def solve_a(self, r: np.ndarray) -> np.ndarray:
        """S^-1 r, S the Schur complement of the ward block."""
        kind, f = self._factor
        return cho_solve(f, r, check_finite=False) if kind == "cho" else f @ r

    def solve(self, r: np.ndarray) -> np.ndarray:
        """H^-1 r for a vector or a matrix of right-hand sides (one per column)."""
        q = len(self.a)
        d = self.d if r.ndim == 1 else self.d[:, None]
        r_a, r_w = r[:q], r[q:]
        x_a = self.solve_a(r_a - self.b @ (r_w / d))
        return np.concatenate([x_a, (r_w - self.b.T @ x_a) / d])

    @functools.cached_property
    def null_space(self) -> np.ndarray:
        """Unit vectors spanning the directions in which the likelihood is flat (the null
        space of X'WX, from the Schur complement's scaled eigenvalues): columns x directions,
        none when the design has full rank."""
        schur = self.schur()
        scale = 1 / np.sqrt(np.maximum(np.diag(schur), 1e-300))
        vals, vecs = np.linalg.eigh(schur * scale[:, None] * scale[None, :])
        null_a = vecs[:, vals < 1e-10 * max(vals.max(initial=0.0), 1e-300)] * scale[:, None]
        null = np.vstack([null_a, -(self.b.T @ null_a) / self.d[:, None]])
        return null / np.linalg.norm(null, axis=0) if null.shape[1] else null

    def identified(self, tol: float = 1e-7) -> np.ndarray:
        """Whether each coefficient is identified (orthogonal to every flat direction)."""
        return np.abs(self.null_space).max(axis=1, initial=0.0) <= tol


def block_hessian(a_cols: sparse.csr_matrix, ward: np.ndarray, n_wards: int, w: np.ndarray):
    """X'diag(w)X of the design ``[a_cols, one-hot(ward)]`` in blocks."""
    aw = a_cols.multiply(w[:, None]).tocsc()
    a = (aw.T @ a_cols).toarray()
    b = (aw.T @ onehot(ward, n_wards)).toarray()
    d = np.bincount(ward, weights=w, minlength=n_wards)
    return BlockHessian(a, b, d)


def onehot(key: np.ndarray, n: int) -> sparse.csr_matrix:
    """The sparse dummy matrix of ``key`` (codes 0..n-1; -1 gives an empty row)."""
    rows = np.flatnonzero(key >= 0)
    return sparse.csr_matrix((np.ones(len(rows)), (rows, key[rows])), shape=(len(key), n))


@dataclass
class PoissonFit:
    """The estimate (``beta``: A's columns then the wards), fitted means, the Hessian at the
    estimate and the design's parts."""

    beta: np.ndarray
    mu: np.ndarray
    hessian: BlockHessian
    design: sparse.csr_matrix  # [A, wards]
    iterations: int


def fit_poisson(
    y: np.ndarray,
    offset: np.ndarray,
    a_cols: sparse.csr_matrix,
    ward: np.ndarray,
    n_wards: int,
    tol: float = 1e-10,
    maxiter: int = 200,
) -> PoissonFit:
    """Poisson maximum likelihood by iteratively reweighted least squares, statsmodels' GLM
    algorithm and start (mu = (y + mean y) / 2), stopping when the deviance changes by less
    than ``tol`` (or 1e-13 of itself)."""
    a_cols = sparse.csr_matrix(a_cols)
    design = sparse.hstack([a_cols, onehot(ward, n_wards)], format="csr")
    mu = (y + y.mean()) / 2
    eta = np.log(mu)
    dev_old, beta, it = math.inf, np.zeros(design.shape[1]), 0
    for it in range(1, maxiter + 1):  # noqa: B007 (the count is returned)
        z = eta - offset + (y - mu) / mu
        beta = block_hessian(a_cols, ward, n_wards, mu).solve(design.T @ (mu * z))
        eta = design @ beta + offset
        mu = np.exp(eta)
        dev = 2 * float(np.sum(special.xlogy(y, y / mu) - (y - mu)))
        if abs(dev - dev_old) <= max(tol, 1e-13 * abs(dev)):
            break
        dev_old = dev
    return PoissonFit(beta, mu, block_hessian(a_cols, ward, n_wards, mu), design, it)


def sandwich(
    hessian: BlockHessian, scores: np.ndarray, L: np.ndarray, correction: float = 1.0
) -> np.ndarray:
    """The cluster sandwich covariance of ``L @ beta``: ``correction`` x L H^-1 (sum over
    clusters of s_c s_c') H^-1 L', from each cluster's score ``scores`` (columns x clusters)."""
    m = scores.T @ hessian.solve(np.atleast_2d(L).T)
    return correction * (m.T @ m)


def cluster_scores(design: sparse.csr_matrix, resid: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """Each cluster's score sum_i x_i r_i: columns x clusters."""
    g = int(groups.max()) + 1
    return (
        design.T
        @ sparse.csr_matrix((resid, (np.arange(len(resid)), groups)), shape=(len(resid), g))
    ).toarray()


def bias_reduced_scores(fit: PoissonFit, resid: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """Each cluster's score with Mancl & DeRouen's (2001) bias-reduced residuals
    (I - H_c)^-1 r_c, H_c = diag(mu_c) X_c H^-1 X_c' the cluster's block of the hat matrix,
    as statsmodels' GEE (independence) computes them; by the Woodbury identity, since H_c has
    the rank of the cluster's columns. Raises LinAlgError when I - H_c is singular."""
    n_cols = fit.design.shape[1]
    out = np.zeros((n_cols, int(groups.max()) + 1))
    order = np.argsort(groups, kind="stable")
    bounds = np.flatnonzero(np.diff(groups[order])) + 1
    for rows in np.split(order, bounds):
        xc = fit.design[rows]
        cols = np.unique(xc.indices)
        xd = xc[:, cols].toarray()  # the cluster's rows on its own columns
        unit = np.zeros((n_cols, len(cols)))
        unit[cols, np.arange(len(cols))] = 1.0
        c_sub = fit.hessian.solve(unit)[cols]  # H^-1 on the cluster's columns
        u = fit.mu[rows, None] * xd  # H_c = u v', v = x c_sub
        v = xd @ c_sub
        r = resid[rows]
        small = np.eye(len(cols)) - v.T @ u
        adjusted = r + u @ np.linalg.solve(small, v.T @ r)
        out[cols, groups[rows[0]]] = xd.T @ adjusted
    return out
