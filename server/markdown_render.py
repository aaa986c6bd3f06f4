"""Markdown to safe HTML: challenge READMEs are written by people, so scripts and unknown markup are stripped."""
from __future__ import annotations

from functools import lru_cache
from urllib.parse import urlsplit

import nh3
from markdown_it import MarkdownIt

ALLOWED_TAGS = {
    "a", "abbr", "b", "blockquote", "code", "em", "i", "li", "ol", "strong", "ul",
    "p", "pre", "h1", "h2", "h3", "h4", "h5", "h6", "table", "thead", "tbody", "tr", "th", "td",
    "hr", "br", "img", "span", "div", "dl", "dt", "dd", "sup", "sub"}
ALLOWED_ATTRS = {"a": {"href", "title"}, "img": {"src", "alt", "title"}, "th": {"style"}, "td": {"style"},
                 "code": {"class"}, "span": {"class"}}
URL_SCHEMES = {"http", "https", "mailto", "data"}  # data: only survives on images (_same_site_images)


@lru_cache(maxsize=1)
def _renderer() -> MarkdownIt:
    # CommonMark plus GitHub-style tables; raw HTML in the source is parsed, then nh3 keeps only the allowed subset.
    return MarkdownIt("commonmark").enable("table")


def same_site_or_data(url: str) -> bool:
    """True for an image source on this site (a path, absolute or relative) or a data:image/ URL."""
    url = url.strip()
    if url.lower().startswith("data:image/"):
        return True
    probe = url.replace("\\", "/")
    return not probe.startswith("//") and not urlsplit(probe).scheme and not urlsplit(probe).netloc


def _same_site_images(tag: str, attr: str, value: str) -> str | None:
    # A README image from another host would tell it who reads the page, and when (CSP's img-src says the same).
    if tag == "img" and attr == "src":
        return value if same_site_or_data(value) else None
    if attr == "href" and value.strip().lower().startswith("data:"):
        return None
    return value


def render_markdown(text: str) -> str:
    """Render Markdown (CommonMark + tables) and keep only a safe subset of HTML (nh3, i.e. Ammonia); images only
    from this site or data: URLs."""
    html = _renderer().render(text or "")
    return nh3.clean(html, tags=ALLOWED_TAGS, attributes=ALLOWED_ATTRS, url_schemes=URL_SCHEMES,
                     attribute_filter=_same_site_images, filter_style_properties={"text-align"},
                     link_rel="noopener noreferrer")
