"""The docs point at tests and files that exist (a renamed test must not leave a dangling row)."""

import re

from tests.conftest import REPO_ROOT


def test_robustness_table_names_existing_tests():
    text = (REPO_ROOT / "docs" / "ROBUSTNESS.md").read_text()
    refs = re.findall(r"`(tests/[\w/]+\.py)(?:::(\w+))?(?:\[[\w-]+\])?`", text)
    assert len(refs) > 20
    for path, name in refs:
        source = (REPO_ROOT / path).read_text()
        if name:
            assert re.search(rf"^def {name}\(", source, re.M), f"{path}::{name} is gone"
