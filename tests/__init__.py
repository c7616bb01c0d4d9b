"""Test suite package: lets tests import shared helpers as `tests.oracles` under plain `pytest` too."""
