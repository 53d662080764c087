"""What a shared page shows (issue 14): notes kept in the trust, small groups withheld."""

from __future__ import annotations

import pytest
from datafiles import EVENTS, write_programme

from rrp_eval import notebook as nb


@pytest.fixture
def shown(monkeypatch):
    out: list = []
    monkeypatch.setattr(nb, "_display", lambda obj, **kw: out.append(obj))

    def html() -> str:
        return "\n".join(getattr(o, "data", "") or "" for o in out if isinstance(o.data, str))

    return html


@pytest.mark.parametrize("internal", [False, True])
def test_event_notes_are_shown_in_internal_reports_only(tmp_path, shown, internal):
    note = "Patient JS moved after 3 restraints"
    data = write_programme(tmp_path / "d", events=EVENTS.replace("New system", note))
    ctx = nb.setup(data=data, internal=internal)
    nb.events_table(ctx)
    page = shown()
    assert "System change" in page or "system change" in page
    assert (note in page) is internal
    assert ("shown in internal reports only" in page) is not internal
