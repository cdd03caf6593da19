from assistant.rendering import render_answer


def test_markdown_is_kept_and_html_is_escaped() -> None:
    """Reliability #11."""
    html = render_answer("**Yes** <b onclick=x>no</b> `code`", 1, set())
    assert "<strong>Yes</strong>" in html and "<code>code</code>" in html
    assert "onclick" not in html


def test_links_and_images_are_stripped() -> None:
    """Reliability #10: no link or image survives the renderer."""
    html = render_answer("[a](https://evil.example) ![b](https://evil.example/i.png)", 1, set())
    assert "<a" not in html and "<img" not in html


def test_only_real_sources_become_citation_links() -> None:
    html = render_answer("See [1] and [2] and [7].", 5, {1, 2})
    assert '<a class="cite" href="#src-5-1">[1]</a>' in html
    assert '<a class="cite" href="#src-5-2">[2]</a>' in html
    assert "[7]" in html and "#src-5-7" not in html


def test_tables_render_without_the_model_s_attributes_or_markup() -> None:
    text = 'Rates:\n| Country | Rate |\n|:--|--:|\n| <b onclick="x">France</b> | 60 € [1] |'
    html = render_answer(text, 2, {1})
    assert "<p>Rates:</p>\n<table>" in html and "<th>Country</th>" in html
    assert '<td>France</td>\n<td>60 € <a class="cite" href="#src-2-1">[1]</a></td>' in html
    assert "style=" not in html and "onclick" not in html and "<b>" not in html


def test_lists_right_after_a_line_and_nested_by_two_spaces_render_as_lists() -> None:
    html = render_answer("You need:\n1. a form\n2. approval:\n  - manager\n  - HR", 1, set())
    assert "<p>You need:</p>\n<ol>\n<li>a form</li>" in html
    assert "<li>approval:<ul>\n<li>manager</li>\n<li>HR</li>\n</ul>" in html


def test_fenced_code_is_escaped_and_kept_verbatim() -> None:
    text = "Run:\n```html\n<script>alert(1)</script>\n- not a list\n```\nDone."
    html = render_answer(text, 1, set())
    assert "<p>Run:</p>\n<pre><code>&lt;script&gt;alert(1)&lt;/script&gt;\n- not a list\n" in html
    assert "<script" not in html and "class=" not in html and "<li>" not in html


def test_a_flagged_table_row_stays_a_row_with_its_flag() -> None:
    text = "| Country | Rate |\n|---|---|\n| France | 60 euros [1] |\n| Spain | 50 euros |"
    flags = [{"sentence": "| France | 60 euros [1] |", "values": ["60 euros"]}]
    html = render_answer(text, 1, {1}, flags)
    assert html.count("<tr>") == 3 and "|" not in html
    assert '<td><span class="unsupported" title="Not found in the sources: 60 euros">France' in html
    assert '[1]</a> <span class="flag">not in the sources: 60 euros</span></td>' in html
