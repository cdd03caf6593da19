from assistant.rendering import render_answer


def test_markdown_is_kept_and_html_is_escaped() -> None:
    html = render_answer("**Yes** <b onclick=x>no</b> `code`", 1, set())
    assert "<strong>Yes</strong>" in html and "<code>code</code>" in html
    assert "onclick" not in html


def test_links_and_images_are_stripped() -> None:
    html = render_answer("[a](https://evil.example) ![b](https://evil.example/i.png)", 1, set())
    assert "<a" not in html and "<img" not in html


def test_only_real_sources_become_citation_links() -> None:
    html = render_answer("See [1] and [2] and [7].", 5, {1, 2})
    assert '<a class="cite" href="#src-5-1">[1]</a>' in html
    assert '<a class="cite" href="#src-5-2">[2]</a>' in html
    assert "[7]" in html and "#src-5-7" not in html
