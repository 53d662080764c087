"""What an evaluation computes: frozen evaluation objects of a trust and of the programme, and
the SPEC tables built from them. No display and no files."""
