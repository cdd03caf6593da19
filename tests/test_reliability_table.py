"""The README's reliability table is the one the tests' docstrings give (run
`python -m tests.reliability` after tagging a test)."""

from tests import reliability


def test_the_readmes_reliability_table_is_current() -> None:
    text = reliability.README.read_text()
    assert text == reliability.readme_with_table(text), "run: python -m tests.reliability"


def test_a_tagged_docstring_is_read_for_each_item_it_names() -> None:
    tags = [m[1] for m in reliability.TAG.finditer("Reliability #14, #15 and #21: bad files")]
    assert tags and reliability.re.findall(r"#(\d+)", tags[0]) == ["14", "15", "21"]


def test_the_status_shows_what_a_docstring_says_cannot_run_here() -> None:
    doc = "Reliability #8: keys. Not covered here: a real container.\n    More text."
    [limit] = [m[1] for m in reliability.LIMIT.finditer(doc)]
    assert limit == "a real container."
    assert reliability.status([("t::a", limit), ("t::b", "")]) == (
        "covered; not here: a real container."
    )
    assert reliability.status([]) == "**not covered**"
