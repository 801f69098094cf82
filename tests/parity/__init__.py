"""Parity tests: our scorers against the reference implementations' own code (or a faithful port kept beside
the test where the reference package cannot be installed without torch, pandas or network)."""
