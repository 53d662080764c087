"""Reading, validating and simulating the input tables (SPEC §1)."""
