"""What a run can reuse from the last one, and how an output folder survives a crash.

Incremental re-runs: every notebook's inputs (the notebook file, the package's own source,
its parameters, the parameters in force, and its slice of the validated data) are hashed; a
notebook whose hash matches the previous run's ``run.json`` and whose pages are on disk is
copied, not executed. The tables are reused the same way on a hash of all the data.

Atomic outputs: a run builds in ``.<out>.build-*`` beside the output folder and swaps it in
with two renames (``out`` to ``.<out>.old-*``, the build to ``out``), then deletes the old
folder. A lock file stops two runs writing one folder. Recovery, at the start of the next run:
if ``out`` is missing and an ``.old`` folder exists, the crash came between the renames and
the old folder is put back; otherwise ``.old`` and ``.build`` folders are leftovers and are
removed.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd

import rrp_eval

_PACKAGE = Path(rrp_eval.__file__).resolve().parent
_DIGEST: str | None = None


def package_digest() -> str:
    """SHA-256 over the package's source and templates (a code change re-runs everything)."""
    global _DIGEST
    if _DIGEST is None:
        h = hashlib.sha256(rrp_eval.__version__.encode())
        for path in sorted(_PACKAGE.rglob("*")):
            if path.is_file() and path.suffix in (".py", ".j2", ".css", ".json"):
                h.update(str(path.relative_to(_PACKAGE)).encode())
                h.update(path.read_bytes())
        _DIGEST = h.hexdigest()
    return _DIGEST


def frame_digest(*frames: pd.DataFrame) -> str:
    """SHA-256 of data frames' values, column names and dtypes (not their row labels)."""
    h = hashlib.sha256()
    for frame in frames:
        h.update(json.dumps([list(map(str, frame.columns)), list(map(str, frame.dtypes))]).encode())
        if len(frame):
            h.update(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
    return h.hexdigest()


def digest(*parts: Any) -> str:
    """SHA-256 of JSON-serialisable parts and strings, in order."""
    h = hashlib.sha256()
    for part in parts:
        h.update(json.dumps(part, sort_keys=True, default=str).encode())
    return h.hexdigest()


def previous_outputs(out_dir: Path) -> dict[str, Any]:
    """The last run's ``run.json`` (empty if there is none or it cannot be read)."""
    try:
        return json.loads((out_dir / "run.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def reusable(previous: dict[str, Any], key: str, input_digest: str, files: list[Path]) -> bool:
    """True when the last run produced ``key`` from the same inputs, fine, and its files exist."""
    entry = previous.get("outputs", {}).get(key, {})
    return (
        entry.get("input_sha256") == input_digest
        and entry.get("status") == "ok"
        and all(f.is_file() for f in files)
    )


def copy_into(files: list[tuple[Path, Path]]) -> None:
    """Hard-link (or copy) previous outputs into the build folder."""
    for src, dst in files:
        dst.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(src, dst)
        except OSError:
            shutil.copy2(src, dst)


def recover(out_dir: Path) -> str:
    """Bring an output folder back to a whole state after a crash; returns what was done."""
    parent, name = out_dir.parent, out_dir.name
    olds = sorted(parent.glob(f".{name}.old-*"), key=lambda p: p.stat().st_mtime)
    builds = list(parent.glob(f".{name}.build-*"))
    done = []
    if not out_dir.exists() and olds:
        os.replace(olds.pop(), out_dir)
        done.append("restored the previous run (a crash between the two renames)")
    for path in olds + builds:
        shutil.rmtree(path, ignore_errors=True)
    if olds or builds:
        done.append(f"removed {len(olds) + len(builds)} folder(s) left by an interrupted run")
    return "; ".join(done)


class OutputLocked(RuntimeError):
    """Another run is writing the same output folder."""


@contextlib.contextmanager
def output_lock(out_dir: Path) -> Iterator[None]:
    """An exclusive lock on ``.<out>.lock`` beside the output folder for the whole run."""
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    path = out_dir.parent / f".{out_dir.name}.lock"
    with open(path, "a+") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            raise OutputLocked(f"{out_dir}: another rrp-eval run is writing here") from exc
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)
