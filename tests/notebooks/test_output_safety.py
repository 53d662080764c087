"""A run never deletes what it did not make (issue 14, deliverable 1).

Each refusal happens before anything is written: exit 2, and every file under the folders
involved is byte-for-byte as before.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from datafiles import WARD_MONTH, write_programme

from rrp_eval.report.incremental import MARKER, check_output_folder, recover, write_marker
from rrp_eval.report.manifest import state_path
from rrp_eval.report.suite import OutputUnwritable, UnusableInput, run_suite

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures" / "suite"


def _tree(folder: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(folder)): p.read_bytes() if p.is_file() else b"<dir>"
        for p in folder.rglob("*")
    }


def _refused(data: Path, out: Path, watch: Path, match: str, **kw) -> None:
    before = _tree(watch)
    with pytest.raises(UnusableInput, match=match):
        run_suite(data=data, out=out, jobs=1, notebooks=FIXTURES, **kw)
    assert _tree(watch) == before


@pytest.fixture
def data(tmp_path):
    return write_programme(tmp_path / "project" / "mydata")


def test_out_equal_to_the_data_folder_is_refused(data):
    _refused(data, data, data.parent, "is the data")


def test_out_containing_the_data_folder_is_refused(data):
    _refused(data, data.parent, data.parent, "contains the data")
    _refused(data, data.parent.parent, data.parent, "contains the data")


def test_out_inside_the_data_folder_is_refused(data):
    _refused(data, data / "reports", data.parent, "is inside the data")


def test_out_equal_to_or_containing_the_parameters_is_refused(data, tmp_path):
    params = tmp_path / "params"
    params.mkdir()
    (params / "programme.yaml").write_text("programme: Test\n", encoding="utf-8")
    _refused(data, params, tmp_path, "is the parameters", params_dir=params)
    _refused(data, tmp_path, tmp_path, "contains the", params_dir=params)


def test_symbolic_links_are_followed(data, tmp_path):
    link = tmp_path / "link-to-data"
    link.symlink_to(data, target_is_directory=True)
    _refused(data, link, data.parent, "is the data")  # --out is a link to the data
    _refused(link, data.parent, data.parent, "contains the data")  # --data is a link into out
    _refused(data, link / "sub", data.parent, "is inside the data")


def test_out_dot_is_refused_from_the_command_line(data):
    project = data.parent
    before = _tree(project)
    run = subprocess.run(
        [sys.executable, "-m", "rrp_eval.cli", "run", "--data", "mydata", "--out", "."],
        cwd=project,
        capture_output=True,
        text=True,
        env={**os.environ, "MPLBACKEND": "Agg"},
    )
    assert run.returncode == 2, run.stderr
    assert "Traceback" not in run.stderr and "contains the data" in run.stderr
    assert "nothing was written" in run.stderr
    assert _tree(project) == before
    same = subprocess.run(
        [sys.executable, "-m", "rrp_eval.cli", "run", "--data", "mydata", "--out", "mydata"],
        cwd=project,
        capture_output=True,
        text=True,
    )
    assert same.returncode == 2 and "is the data" in same.stderr
    assert _tree(project) == before


def test_a_folder_not_written_by_rrp_eval_is_refused(data, tmp_path):
    out = tmp_path / "elsewhere"
    out.mkdir()
    (out / "thesis.docx").write_bytes(b"years of work")
    _refused(data, out, out, "not empty and was not written by rrp-eval run")
    (out / "sub").mkdir()
    (out / "sub" / "run.json").write_text('{"command": "run", "outputs": {}}')
    _refused(data, out / "sub" / "run.json", out, "is a file")


def test_runs_replace_their_own_folder_but_not_what_was_added_to_it(data, tmp_path):
    out = tmp_path / "reports"
    out.mkdir()  # an existing empty folder is fine
    first = run_suite(data=data, out=out, jobs=1, notebooks=FIXTURES, trusts=["RXA"])
    assert first.exit_code == 0 and (out / MARKER).is_file()
    again = run_suite(data=data, out=out, jobs=1, notebooks=FIXTURES, trusts=["RXA"])
    assert again.exit_code == 0  # its own earlier output is replaced
    (out / "notes.txt").write_text("mine", encoding="utf-8")
    _refused(data, out, out, r"holds notes\.txt, which rrp-eval run did not write")


def test_internal_and_shared_runs_never_share_a_folder(data, tmp_path):
    out = tmp_path / "reports"
    summary = run_suite(
        data=data, out=out, jobs=1, notebooks=FIXTURES, trusts=["RXA"], internal=True
    )
    assert summary.out == (tmp_path / "reports-internal").resolve()  # its own folder
    assert not out.exists()
    assert '"internal"' in (summary.out / MARKER).read_text()
    _refused(data, summary.out, summary.out, "holds internal reports and this run is shared")
    out.mkdir()
    write_marker(out, "shared")
    with pytest.raises(Exception, match="holds shared reports and this run is internal"):
        check_output_folder(out.with_name("reports"), "internal", {})


def test_recovery_only_touches_folders_a_run_wrote(tmp_path):
    out = tmp_path / "out"
    foreign = tmp_path / ".out.old-1"  # a name like ours, but not ours
    foreign.mkdir()
    (foreign / "keep.txt").write_text("not a run's")
    build = tmp_path / ".out.build-x"
    build.mkdir()
    write_marker(build, "shared")
    assert "removed 1" in recover(out)
    assert (foreign / "keep.txt").is_file() and not build.exists()
    assert not out.exists()  # the foreign folder was not taken for a previous run


@pytest.fixture
def small_disk(tmp_path):
    """A 4 MiB file system (tmpfs; needs root, as in CI)."""
    mount = tmp_path / "small"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mount)], capture_output=True
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a small file system here: {done.stderr.decode().strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def test_a_full_disk_stops_the_run_cleanly_and_keeps_the_last_reports(data, small_disk):
    out = small_disk / "out"
    first = run_suite(data=data, out=out, jobs=1, notebooks=FIXTURES, trusts=["RXA"])
    assert first.exit_code == 0
    before = _tree(out)
    free = os.statvfs(small_disk).f_bavail * os.statvfs(small_disk).f_frsize
    (small_disk / "filler").write_bytes(b"\0" * (free - 64 * 1024))  # 64 KiB left
    with pytest.raises(OutputUnwritable, match="No space left on device") as exc:
        run_suite(data=data, out=out, jobs=1, notebooks=FIXTURES, trusts=["RXA"], force=True)
    assert "nothing was replaced" in str(exc.value)
    assert _tree(out) == before  # the previous reports, untouched
    assert not list(small_disk.glob(".out.build-*"))  # the half-built run removed
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "rrp_eval.cli",
            "run",
            "--data",
            str(data),
            "--out",
            str(out),
            "--force",
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "MPLBACKEND": "Agg"},
    )
    assert run.returncode == 3, run.stderr
    assert "Traceback" not in run.stderr and "No space left on device" in run.stderr
    assert "JSON" not in run.stderr


def test_every_internal_artefact_says_it_is_internal(data, tmp_path):
    import nbformat
    from openpyxl import load_workbook
    from PIL import Image

    shared = run_suite(data=data, out=tmp_path / "r", jobs=1, notebooks=FIXTURES, trusts=["RXA"])
    internal = run_suite(
        data=data, out=tmp_path / "r", jobs=1, notebooks=FIXTURES, trusts=["RXA"], internal=True
    )
    assert internal.out.name == "r-internal" and shared.out.name == "r"
    book = load_workbook(internal.out / "tables" / "results.xlsx")
    assert all(ws["A1"].value.startswith("INTERNAL: NOT FOR SHARING") for ws in book.worksheets)
    book = load_workbook(shared.out / "tables" / "results.xlsx")
    assert not any("INTERNAL" in ws["A1"].value for ws in book.worksheets)
    for path in (internal.out / "notebooks").glob("*.ipynb"):
        first = nbformat.read(path, as_version=4).cells[0]
        assert first.cell_type == "markdown" and "INTERNAL: NOT FOR SHARING" in first.source
    for path in (shared.out / "notebooks").glob("*.ipynb"):
        assert "INTERNAL" not in nbformat.read(path, as_version=4).cells[0].source
    stamped = Image.open(internal.out / "programme_at_a_glance.png").size
    plain = Image.open(shared.out / "programme_at_a_glance.png").size
    assert stamped[1] > plain[1]  # the stamp is drawn above the figure


# --- found by an independent attack on the above (issue 14 review) ---------------------------


def test_a_manifest_beside_a_folder_does_not_make_it_ours(data, tmp_path):
    first = run_suite(data=data, out=tmp_path / "out1", jobs=1, notebooks=FIXTURES, trusts=["RXA"])
    assert first.exit_code == 0
    stranger = tmp_path / "reports2"
    (stranger / "notebooks").mkdir(parents=True)
    (stranger / "notebooks" / "my_analysis.ipynb").write_text("mine")
    shutil.copy(state_path(tmp_path / "out1"), state_path(stranger))
    _refused(data, stranger, stranger, "not empty and was not written by rrp-eval run")


def test_a_stale_manifest_is_never_used_for_reuse(data, tmp_path):
    out = tmp_path / "out"
    run_suite(data=data, out=out, jobs=1, notebooks=FIXTURES, trusts=["RXA"])
    stale = state_path(out).read_text()
    again = run_suite(data=data, out=out, jobs=1, notebooks=FIXTURES, trusts=["RXA"], force=True)
    assert again.exit_code == 0
    state_path(out).write_text(stale)  # the manifest of the run before, beside the new reports
    third = run_suite(data=data, out=out, jobs=1, notebooks=FIXTURES, trusts=["RXA"])
    assert not any(r.reused for r in third.results)  # its run id is not the folder's


def test_shared_outputs_carry_no_absolute_path(tmp_path):
    data = write_programme(tmp_path / "my data")  # a space: shell-quoted in the command
    params = tmp_path / "my params"
    shutil.copytree(ROOT / "params", params)
    out = tmp_path / "out"
    summary = run_suite(data=data, params_dir=params, out=out, jobs=1, notebooks=FIXTURES)
    assert summary.exit_code == 0
    text = (out / "run.json").read_text()
    assert str(tmp_path) not in text and "'my data'" in json.loads(text)["reproduce"]
    for path in (out / "notebooks").glob("*.ipynb"):
        assert str(tmp_path) not in path.read_text(), path.name
    nb = json.loads((out / "notebooks" / "20_trust_evaluation_RXA.ipynb").read_text())
    assert nb["metadata"]["papermill"]["parameters"]["data"] == "my data"


def test_glob_characters_in_out_touch_no_other_run(tmp_path):
    build = tmp_path / ".reports.build-x"
    build.mkdir()
    write_marker(build, "shared")
    assert recover(tmp_path / "r*") == ""
    assert build.is_dir()


def test_a_planted_link_as_the_lock_is_refused_and_its_target_kept(data, tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("important notes")
    (tmp_path / ".o.lock").symlink_to(victim)
    with pytest.raises(UnusableInput, match=r"\.o\.lock: cannot be used as the run's lock"):
        run_suite(data=data, out=tmp_path / "o", jobs=1, notebooks=FIXTURES)
    assert victim.read_text() == "important notes"


def test_a_manifest_that_cannot_be_written_stops_the_run_before_the_swap(
    data, tmp_path, monkeypatch
):
    from rrp_eval.report import suite as run_module

    out = tmp_path / "out"
    run_suite(data=data, out=out, jobs=1, notebooks=FIXTURES, trusts=["RXA"])
    before = _tree(out)
    real = run_module.write_atomic

    def full_disk(path, text):
        if ".manifest.json" in path.name:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
        return real(path, text)

    monkeypatch.setattr(run_module, "write_atomic", full_disk)
    with pytest.raises(OutputUnwritable, match="nothing was replaced"):
        run_suite(data=data, out=out, jobs=1, notebooks=FIXTURES, trusts=["RXA"], force=True)
    assert _tree(out) == before  # true to its word


@pytest.mark.parametrize("timeout", [float("nan"), float("inf"), 0.0, -1.0])
def test_a_timeout_that_is_not_a_positive_number_is_refused(data, tmp_path, timeout):
    with pytest.raises(UnusableInput, match="must be a positive number of seconds"):
        run_suite(data=data, out=tmp_path / "o", jobs=1, notebooks=FIXTURES, timeout=timeout)


def test_rows_of_a_trust_missing_from_wards_fail_the_whole_run(tmp_path):
    wm = WARD_MONTH + "ZZZ,W1,2021-01,500,1,0,0,0\n"
    data = write_programme(tmp_path / "d", ward_month=wm)
    summary = run_suite(data=data, out=tmp_path / "o", jobs=1, notebooks=FIXTURES)
    assert list(summary.failed_trusts) == ["ZZZ"] and summary.exit_code == 1
    assert "ZZZ" in (tmp_path / "o" / "index.html").read_text()


_FULL_AT_THE_TABLES = """
import errno, sys
from rrp_eval.report import suite

def full(*args, **kwargs):
    raise OSError(errno.ENOSPC, "No space left on device", str(args[0]))

suite.write_parquet = full
from rrp_eval.cli import main
sys.exit(main(sys.argv[1:]))
"""


def test_a_disk_that_fills_while_the_workers_run_stops_quietly(data, tmp_path):
    """The disk fills as this process writes the tables, while warm kernels are still running
    trust pages on both workers: exit 3 with one clear line, and no worker's traceback."""
    out = tmp_path / "out"
    first = run_suite(data=data, out=out, jobs=1, notebooks=FIXTURES, trusts=["RXA"])
    before = _tree(out)
    assert first.exit_code == 0
    args = ["run", "--data", str(data), "--out", str(out), "--force", "--jobs", "2"]
    run = subprocess.run(
        [sys.executable, "-c", _FULL_AT_THE_TABLES, *args, "--kernels", "warm"],
        capture_output=True,
        text=True,
        env={**os.environ, "MPLBACKEND": "Agg"},
    )
    assert run.returncode == 3, run.stderr
    assert "No space left on device" in run.stderr and "nothing was replaced" in run.stderr
    assert "Traceback" not in run.stderr, run.stderr
    assert _tree(out) == before
    assert not list(tmp_path.glob(".out.build-*"))
