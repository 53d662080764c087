"""A content-keyed cache of evaluations, so that a batch run fits each trust once.

The batch run sets ``RRP_EVAL_EVALUATIONS`` to a private folder for its workers and kernels: an
evaluation computed by the run is found by the notebook that shows it, because both compute
the same key from the package's code, the data they evaluate and the parameters. Without the
variable (a notebook opened by hand) nothing is cached. A cached file is used only under its
full key, so a changed input can never be served a stale evaluation.
"""

from __future__ import annotations

import logging
import os
import pickle
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from threadpoolctl import threadpool_limits

from rrp_eval.digest import digest, package_digest

CACHE_ENV = "RRP_EVAL_EVALUATIONS"
T = TypeVar("T")
logger = logging.getLogger(__name__)


def one_thread(compute: Callable[[], T]) -> T:
    """``compute()`` with one BLAS thread: the fits give the same digits whatever the machine's
    thread count (the GEE's robust intervals moved in the fifth significant digit between one
    and two OpenBLAS threads), so a notebook opened by hand, a batch worker and a rerun agree."""
    with threadpool_limits(limits=1):
        return compute()


def cache_folder() -> Path | None:
    """The folder named by ``RRP_EVAL_EVALUATIONS`` (None when unset or blank)."""
    value = os.environ.get(CACHE_ENV, "")
    return Path(value) if value else None


def cache_key(kind: str, parts: tuple[Any, ...]) -> str:
    """The key of an evaluation: its kind, the package's code and the parts it depends on."""
    return digest(kind, package_digest(), list(parts))


def cached(kind: str, parts: tuple[Any, ...], compute: Callable[[], T]) -> T:
    """``compute()``, or the value an earlier call with the same key stored in the cache
    folder; stored there (atomically) when the folder is set."""
    folder = cache_folder()
    if folder is None:
        return one_thread(compute)
    path = folder / f"{kind}-{cache_key(kind, parts)}.pickle"
    try:
        with open(path, "rb") as fh:
            return pickle.load(fh)
    except FileNotFoundError:
        pass
    except (OSError, pickle.UnpicklingError, EOFError, AttributeError, ImportError) as exc:
        logger.warning("%s: unreadable cached evaluation (%s); computing it again", path, exc)
    value = one_thread(compute)
    store(path, value)
    return value


def store(path: Path, value: Any) -> None:
    """Pickle ``value`` to ``path`` through a temporary file in the same folder."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
        with os.fdopen(fd, "wb") as fh:
            pickle.dump(value, fh, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(tmp, path)
    except OSError as exc:  # a cache that cannot be written only costs time
        logger.warning("%s: evaluation not cached (%s)", path, exc.strerror)
