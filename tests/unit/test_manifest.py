"""Unit tests for rrp_eval.report.manifest."""

from __future__ import annotations

import hashlib
import json

import pytest

from rrp_eval.report.manifest import sha256_file, write_atomic, write_manifest


def test_manifest_records_inputs_hashes_versions_and_timings(tmp_path):
    data = tmp_path / "ward_month.csv"
    data.write_bytes(b"a,b\n1,2\n")
    path = write_manifest(
        tmp_path,
        command="run",
        inputs={"ward_month": data},
        parameters={"seed": 1},
        outputs={"x": "ok"},
        timings={"total": 1.23456},
    )
    m = json.loads(path.read_text())
    assert m["inputs"]["ward_month"]["sha256"] == hashlib.sha256(b"a,b\n1,2\n").hexdigest()
    assert m["parameters"] == {"seed": 1}
    assert {"python", "rrp_eval", "statsmodels", "pandas"} <= set(m["versions"])
    assert m["timings_seconds"]["total"] == 1.235


def test_sha256_of_a_large_file_read_in_blocks(tmp_path):
    blob = bytes(range(256)) * 10000
    (tmp_path / "big").write_bytes(blob)
    assert sha256_file(tmp_path / "big") == hashlib.sha256(blob).hexdigest()


def test_atomic_write_leaves_the_old_file_when_writing_fails(tmp_path):
    target = tmp_path / "t.csv"
    write_atomic(target, "old\n")

    with pytest.raises(TypeError):
        write_atomic(target, 123)  # type: ignore[arg-type]
    assert target.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["t.csv"]
