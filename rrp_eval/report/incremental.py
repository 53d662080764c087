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

Safety: a run only ever replaces a folder that an earlier run wrote (it carries ``MARKER``) or
an empty one, never one that holds, or lies inside, the data or the parameters
(``check_output_folder``); and recovery only removes leftovers that carry the marker.
"""

from __future__ import annotations

import contextlib
import fcntl
import glob
import json
import os
import shutil
import signal
import stat
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from rrp_eval.digest import digest, frame_digest, package_digest  # noqa: F401 (re-exported)


def previous_outputs(out_dir: Path) -> dict[str, Any]:
    """The last run's full manifest, kept beside the folder (``manifest.state_path``) when it
    belongs to the run whose reports are there (the run ids match), else the folder's
    ``run.json`` (empty if there is none or it cannot be read)."""
    from rrp_eval.report.manifest import state_path

    run_id = _marker_run_id(out_dir)
    try:
        state = json.loads(state_path(out_dir).read_text(encoding="utf-8"))
        if run_id and isinstance(state, dict) and state.get("run_id") == run_id:
            return state  # the manifest of the run whose reports are in the folder
    except (OSError, ValueError):
        pass
    try:  # an internal folder's run.json is full; a shared one has no hashes (nothing reused)
        manifest = json.loads((out_dir / "run.json").read_text(encoding="utf-8"))
        return manifest if isinstance(manifest, dict) else {}
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


MARKER = ".rrp-eval-output"
#: everything ``rrp-eval run`` writes at the top of its output folder
OUTPUT_ENTRIES = frozenset(
    {
        MARKER,
        "index.html",
        "methods.html",
        "programme.html",
        "data_quality.html",
        "programme_at_a_glance.png",
        "run.json",
        "trusts",
        "notebooks",
        "tables",
        "logs",
        "pdf",
    }
)


class OutputRefused(ValueError):
    """An output folder that a run must not replace (it would delete what it did not make)."""


def write_marker(folder: Path, mode: str, run_id: str = "") -> None:
    """Mark ``folder`` as an rrp-eval output folder of ``mode`` ("shared" or "internal"),
    written by the run ``run_id`` (which its full manifest, kept beside it, also names)."""
    text = json.dumps({"written_by": "rrp-eval run", "mode": mode, "run_id": run_id}) + "\n"
    (folder / MARKER).write_text(text, encoding="utf-8")


def _marker_run_id(folder: Path) -> str:
    try:
        marker = json.loads((folder / MARKER).read_text(encoding="utf-8"))
        return str(marker.get("run_id") or "")
    except (OSError, ValueError, AttributeError):
        return ""


def output_mode(folder: Path) -> str | None:
    """The mode ("shared" or "internal") of a folder an rrp-eval run wrote, else None.

    Folders written before the marker existed are recognised by their ``run.json``.
    """
    try:
        marker = json.loads((folder / MARKER).read_text(encoding="utf-8"))
        if marker.get("written_by") == "rrp-eval run" and marker.get("mode") in (
            "shared",
            "internal",
        ):
            return str(marker["mode"])
    except (OSError, ValueError, AttributeError):
        pass
    try:  # the folder's own run.json, never a manifest kept beside it (which may be stale)
        manifest = json.loads((folder / "run.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(manifest, dict):
        return None
    if manifest.get("command") == "run" and isinstance(manifest.get("outputs"), dict):
        internal = manifest.get("parameters", {}).get("internal")
        return "internal" if internal is True else "shared"
    return None


def check_output_folder(out_dir: Path, mode: str, protected: dict[str, Path]) -> None:
    """Refuse (``OutputRefused``) an output folder whose replacement could lose anything.

    ``out_dir`` must not be, contain or lie inside any ``protected`` path (the data, the
    parameters), symbolic links resolved; if it exists it must be a folder that is empty or
    was written by an earlier run of the same ``mode`` and holds nothing else at its top.
    """
    out = out_dir.resolve()
    for what, path in protected.items():
        target = path.resolve()
        if out == target:
            raise OutputRefused(f"--out {out_dir} is the {what} ({path})")
        if out in target.parents:
            raise OutputRefused(
                f"--out {out_dir} contains the {what} ({path}); the run replaces its output "
                "folder whole"
            )
        if target in out.parents:
            raise OutputRefused(f"--out {out_dir} is inside the {what} ({path})")
    if out.parent == out:
        raise OutputRefused(f"--out {out_dir} is the root of a file system")
    if not out.exists():
        return
    if not out.is_dir():
        raise OutputRefused(f"--out {out_dir} is a file, not a folder")
    entries = sorted(p.name for p in out.iterdir())
    if not entries:
        return
    found = output_mode(out)
    if found is None:
        raise OutputRefused(
            f"--out {out_dir} is not empty and was not written by rrp-eval run "
            f"({_listing(entries)}); the run replaces its output folder whole, so choose a "
            "new or empty folder"
        )
    if found != mode:
        raise OutputRefused(
            f"--out {out_dir} holds {found} reports and this run is {mode}; internal and "
            "shared reports are never written to one folder (choose another --out)"
        )
    foreign = [e for e in entries if e not in OUTPUT_ENTRIES]
    if foreign:
        raise OutputRefused(
            f"--out {out_dir} holds {_listing(foreign)}, which rrp-eval run did not write; "
            "the run replaces the folder whole, so move them first"
        )


def _listing(names: list[str], most: int = 3) -> str:
    shown = ", ".join(names[:most])
    return shown + (f" and {len(names) - most} more" if len(names) > most else "")


def recover(out_dir: Path) -> str:
    """Bring an output folder back to a whole state after a crash; returns what was done.

    Only folders that an rrp-eval run wrote (they carry ``MARKER``) are restored or removed.
    """
    parent, name = out_dir.parent, glob.escape(out_dir.name)  # `r*` matches only itself
    olds = sorted(
        (p for p in parent.glob(f".{name}.old-*") if output_mode(p) is not None),
        key=lambda p: p.stat().st_mtime,
    )
    builds = [p for p in parent.glob(f".{name}.build-*") if (p / MARKER).is_file()]
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


#: file descriptors of the locks this process holds (closed in forked workers)
_HELD: set[int] = set()


def _process_start(pid: int) -> str | None:
    """A process's start time in clock ticks since boot (``/proc/<pid>/stat`` field 22), to
    tell a live owner from a new process that reuses its number; None if there is none."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()
    return None if fields[0] == "Z" else fields[19]


def _owner_alive(path: Path) -> bool:
    """Whether the process recorded in a lock file (``pid start``) still runs. An unreadable
    record counts as alive: only a lock whose owner is known to have died is cleared."""
    try:
        pid_text, start = path.read_text(encoding="utf-8").split()
        pid = int(pid_text)
    except (OSError, ValueError):
        return True
    if not Path("/proc/self/stat").exists():  # no /proc: cannot tell
        return True
    return _process_start(pid) == start


@contextlib.contextmanager
def output_lock(out_dir: Path) -> Iterator[None]:
    """An exclusive lock on ``.<out>.lock`` beside the output folder for the whole run.

    The lock records its owner (process id and start time). Worker processes forked while it
    is held close their copy (``release_inherited``), so it never outlives the run; and if it
    is held although its owner has died (e.g. workers of a run killed with ``kill -9`` that
    did not stop), the stale lock file is replaced and the run goes ahead.
    """
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    path = out_dir.parent / f".{out_dir.name}.lock"
    cleared = False
    while True:
        try:  # never through a symbolic link: a planted link must not be truncated
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
        except OSError as exc:
            raise OutputLocked(
                f"{path}: cannot be used as the run's lock ({exc.strerror}); remove it"
            ) from exc
        fh = os.fdopen(fd, "r+")  # held for the whole run
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            fh.close()
            raise OutputLocked(f"{path}: is not a plain file; remove it")
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            fh.close()
            if not cleared and not _owner_alive(path):
                path.unlink(missing_ok=True)  # its holders are leftovers of a dead run
                cleared = True
                continue
            raise OutputLocked(f"{out_dir}: another rrp-eval run is writing here") from exc
        try:
            same = os.stat(path).st_ino == os.fstat(fh.fileno()).st_ino
        except OSError:
            same = False
        if same:
            break
        fh.close()  # another run replaced a stale lock file meanwhile: lock the new one
    try:
        fh.seek(0)
        fh.truncate()
        fh.write(f"{os.getpid()} {_process_start(os.getpid())}\n")
        fh.flush()
        _HELD.add(fh.fileno())
        yield
    finally:
        _HELD.discard(fh.fileno())
        fcntl.flock(fh, fcntl.LOCK_UN)
        fh.close()


def release_inherited() -> None:
    """In a process forked while a lock was held: close the copies of the lock (a forked
    child shares the lock, which would otherwise outlive the run that took it)."""
    for fd in list(_HELD):
        with contextlib.suppress(OSError):
            os.close(fd)
    _HELD.clear()


def die_with_parent(parent: int, signum: int = signal.SIGTERM) -> None:
    """Ask Linux to send ``signum`` to this process when its parent dies (``prctl``
    PR_SET_PDEATHSIG), and leave at once if the parent ``parent`` has gone already."""
    if sys.platform != "linux":
        return
    import ctypes

    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, int(signum), 0, 0, 0)  # PR_SET_PDEATHSIG
    if os.getppid() != parent:
        os._exit(1)
