"""What a shared page shows (issue 14): notes kept in the trust, small groups withheld."""

from __future__ import annotations

import pytest
from datafiles import EVENTS, write_programme

import rrp_eval as rrp
from rrp_eval import show


def _html(section: show.Section) -> str:
    return "\n".join(p.html for p in section.parts)


@pytest.mark.parametrize("internal", [False, True])
def test_event_notes_are_shown_in_internal_reports_only(tmp_path, internal):
    note = "Patient JS moved after 3 restraints"
    data = write_programme(tmp_path / "d", events=EVENTS.replace("New system", note))
    programme = rrp.load_programme(data)
    rule = rrp.DisclosureRule.from_params(programme.params.disclosure, internal=internal)
    page = _html(show.quality.events_table(rrp.evaluate_quality(programme), rule))
    assert "System change" in page or "system change" in page
    assert (note in page) is internal
    assert ("shown in internal reports only" in page) is not internal


def test_every_section_needs_the_disclosure_rule(tmp_path):
    """Forgetting the rule is a TypeError, never a page without disclosure control."""
    programme = rrp.load_programme(write_programme(tmp_path / "d"))
    with pytest.raises(TypeError, match="rule"):
        show.quality.events_table(rrp.evaluate_quality(programme))  # type: ignore[call-arg]
