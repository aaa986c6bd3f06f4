"""Challenge READMEs render as CommonMark with tables, and only a safe subset of HTML survives."""
from podium.server.markdown_render import render_markdown


def test_commonmark_tables_and_code():
    html = render_markdown("# Title\n\n| a | b |\n|:-|-:|\n| 1 | 2 |\n\n```python\nx = 1\n```\n")
    assert "<h1>Title</h1>" in html
    assert '<th style="text-align:left">a</th>' in html and '<td style="text-align:right">2</td>' in html
    assert '<code class="language-python">x = 1' in html


def test_scripts_handlers_and_dangerous_links_are_stripped():
    html = render_markdown('<script>alert(1)</script>\n\nsee <img src="x.png" onerror="alert(1)"> '
                           '<a href="javascript:alert(2)">y</a> <iframe src="//evil.example"></iframe> '
                           '[z](javascript:alert(3)) [ok](https://example.org)')
    for bad in ("<script", "alert(1)", "onerror", 'href="javascript:', "<iframe"):
        assert bad not in html, bad
    assert "[z](javascript:alert(3))" in html  # left as plain text, never a link
    assert '<a href="https://example.org" rel="noopener noreferrer">ok</a>' in html
    assert '<img src="x.png">' in html


def test_empty_readme():
    assert render_markdown("") == "" and render_markdown(None) == ""
