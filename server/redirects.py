"""Where a page may send the browser next: only a path on this site, judged the way a browser will read it."""
from __future__ import annotations

from urllib.parse import urlsplit

MAX_NEXT = 2000


def safe_next(target: str | None, default: str) -> str:
    """target when it is a same-site path (e.g. /challenges/digits), else default.

    Browsers drop tabs and newlines inside a URL and read a backslash as a slash, so "/\\t/evil.example" and
    "/\\\\evil.example" both mean //evil.example, another host. Anything that is not printable ASCII is refused
    outright (control characters, full-width dots and slashes that a normaliser folds into '.' and '/'); what is
    left is read with backslashes as slashes and must be a path: one leading '/', no scheme, no host.
    """
    if not target or len(target) > MAX_NEXT or any(not ("!" <= ch <= "~") for ch in target):
        return default
    path = target.replace("\\", "/")
    if not path.startswith("/") or path.startswith("//"):
        return default
    parts = urlsplit(path)
    if parts.scheme or parts.netloc:
        return default
    return path
