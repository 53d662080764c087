"""The run manifest (``run.json``): inputs and their hashes, parameters, versions, timings."""

from __future__ import annotations

import hashlib
import json
import os
import platform
import shlex
import tempfile
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from rrp_eval._version import __version__

RECORDED_PACKAGES = (
    "numpy",
    "pandas",
    "scipy",
    "statsmodels",
    "matplotlib",
    "seaborn",
    "papermill",
    "nbconvert",
    "ipykernel",
    "openpyxl",
    "pydantic",
    "pandera",
)


def sha256_file(path: str | os.PathLike[str]) -> str:
    """SHA-256 of a file's bytes, read in blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def environment_versions() -> dict[str, str]:
    """Versions of Python, rrp-eval and the libraries that shape the numbers."""
    out = {"python": platform.python_version(), "rrp_eval": __version__}
    for name in RECORDED_PACKAGES:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "not installed"
    return out


def write_atomic(path: Path, text: str) -> None:
    """Write text to ``path`` through a temporary file in the same folder, then rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as fh:
            fh.write(text)
        os.chmod(tmp, 0o644)  # mkstemp creates 0600; reports are meant to be read
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_manifest(
    out_dir: Path,
    *,
    command: str,
    inputs: dict[str, Path],
    parameters: dict[str, Any],
    outputs: dict[str, Any],
    timings: dict[str, float],
    notebooks: dict[str, Path] | None = None,
    reproduce: str = "",
    seeds: dict[str, int] | None = None,
    full: bool = True,
) -> Path:
    """Write ``out_dir/run.json`` and return its path (``full=False``: the ``shareable``
    copy).

    Parameters
    ----------
    out_dir : pathlib.Path
        The run's output folder.
    command : str
        What was run (e.g. ``"run"``).
    inputs : dict of str to Path
        Input files; each is recorded with its SHA-256.
    parameters : dict
        Parameters in force (JSON-serialisable).
    outputs : dict
        Per-output status and notes (JSON-serialisable).
    timings : dict of str to float
        Seconds per stage.
    notebooks : dict of str to Path, optional
        The notebooks executed; each recorded with its SHA-256.
    reproduce : str
        The command line that reproduces the run.
    seeds : dict of str to int, optional
        Random seeds the computations used (e.g. a bootstrap's).
    """
    manifest = {
        "command": command,
        "created_utc": datetime.now(UTC).isoformat(timespec="seconds"),
        "inputs": {name: {"path": str(p), "sha256": sha256_file(p)} for name, p in inputs.items()},
        "parameters": parameters,
        "notebooks": {
            name: {"path": str(p), "sha256": sha256_file(p)}
            for name, p in (notebooks or {}).items()
        },
        "reproduce": reproduce,
        "seeds": seeds or {},
        "versions": environment_versions(),
        "platform": {
            "system": platform.system(),
            "release": platform.release(),
            "machine": platform.machine(),
        },
        "timings_seconds": {k: round(v, 3) for k, v in timings.items()},
        "outputs": outputs,
    }
    path = out_dir / "run.json"
    write_atomic(path, manifest_text(manifest if full else shareable(manifest)))
    return path


def manifest_text(manifest: dict[str, Any]) -> str:
    return json.dumps(manifest, indent=2, sort_keys=False, default=str) + "\n"


def state_path(out_dir: Path) -> Path:
    """Where the full manifest of a run is kept, beside (not in) its output folder: the
    hashes that let the next run reuse unchanged notebooks, which a shared folder must not
    carry (a hash of a trust's data lets anyone confirm a guess of its counts)."""
    return out_dir.parent / f".{out_dir.name}.manifest.json"


def scrub_paths(value: Any) -> Any:
    """Absolute paths cut to their last part, recursively."""
    if isinstance(value, dict):
        return {k: scrub_paths(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [scrub_paths(v) for v in value]
    if isinstance(value, str) and (value.startswith(("/", "\\")) or value[1:3] in (":\\", ":/")):
        return Path(value).name or value
    return value


def shareable(manifest: dict[str, Any]) -> dict[str, Any]:
    """The manifest as a shared output folder holds it: no absolute paths (they name people's
    folders and machines), no hash of any input or of any trust's slice of the data (a hash
    confirms a guessed count); input names, parameters, versions, status and timings stay."""
    out = scrub_paths(manifest)
    out["inputs"] = sorted(manifest.get("inputs", {}))
    out["outputs"] = {
        name: {k: v for k, v in entry.items() if k != "input_sha256"}
        if isinstance(entry, dict)
        else entry
        for name, entry in out.get("outputs", {}).items()
    }
    try:
        words = shlex.split(manifest.get("reproduce", ""))
    except ValueError:
        words = []
    out["reproduce"] = shlex.join(scrub_paths(w) for w in words)
    out["note"] = (
        "Shared copy: input hashes and absolute paths are kept only in the full manifest beside "
        "the output folder (" + state_path(Path("OUT")).name.replace("OUT", "<out>") + ")."
    )
    return out
