"""pytest imports test files by basename (rootdir-relative packages are not used here): two files of one
name in tests/unit and tests/integration stop the whole collection, which only a full run would show."""

from collections import Counter
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]


def test_no_two_test_files_share_a_basename():
    shared = ("__init__.py", "conftest.py")
    names = Counter(p.name for p in TESTS.rglob("*.py") if p.name not in shared and "golden" not in p.parts)
    assert [n for n, c in names.items() if c > 1] == []
