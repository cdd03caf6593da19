"""The README's reliability table is the one the tests' docstrings give (run
`python -m tests.reliability` after tagging a test)."""

from tests import reliability


def test_the_readmes_reliability_table_is_current() -> None:
    text = reliability.README.read_text()
    assert text == reliability.readme_with_table(text), "run: python -m tests.reliability"


def test_a_tagged_docstring_is_read_for_each_item_it_names() -> None:
    tags = [m[1] for m in reliability.TAG.finditer("Reliability #14, #15 and #21: bad files")]
    assert tags and reliability.re.findall(r"#(\d+)", tags[0]) == ["14", "15", "21"]
