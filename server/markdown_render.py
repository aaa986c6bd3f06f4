"""Markdown to safe HTML: challenge READMEs are written by people, so scripts are stripped."""
from __future__ import annotations

import bleach
import markdown

ALLOWED_TAGS = sorted(set(bleach.sanitizer.ALLOWED_TAGS) | {
    "p", "pre", "code", "h1", "h2", "h3", "h4", "h5", "h6", "table", "thead", "tbody", "tr", "th", "td",
    "hr", "br", "img", "span", "div", "dl", "dt", "dd", "sup", "sub"})
ALLOWED_ATTRS = {"a": ["href", "title"], "img": ["src", "alt", "title"], "th": ["align"], "td": ["align"],
                 "code": ["class"], "span": ["class"]}


def render_markdown(text: str) -> str:
    """Render Markdown and keep only a safe subset of HTML."""
    html = markdown.markdown(text or "", extensions=["tables", "fenced_code"])
    return bleach.clean(html, tags=ALLOWED_TAGS, attributes=ALLOWED_ATTRS, protocols=["http", "https", "mailto"],
                        strip=True)
