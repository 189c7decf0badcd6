"""A model card's Markdown as HTML, with markdown-it-py: raw HTML off (``<script>`` stays text), its link
validator on (``javascript:``, ``vbscript:``, ``file:`` and non-image ``data:`` links are not made links), and
relative links pointed into the repo's files at the shown commit. The YAML header is not shown as text."""

from __future__ import annotations

import re
from collections.abc import Iterable

from markdown_it import MarkdownIt
from markdown_it.token import Token

FRONT_MATTER = re.compile(r"\A---[ \t]*\r?\n.*?^---[ \t]*(?:\r?\n|\Z)", re.S | re.M)
_SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")


def strip_front_matter(text: str) -> str:
    """The card without its ``---`` … ``---`` metadata header (shown separately, parsed)."""
    match = FRONT_MATTER.match(text)
    return text[match.end() :] if match else text


def _renderer() -> MarkdownIt:
    return MarkdownIt("commonmark", {"html": False}).enable("table").enable("strikethrough")


_MD = _renderer()


def render_card(text: str, files_base: str) -> str:
    """The card's body as HTML. ``files_base`` (``/org/name/resolve/<commit>/``) is where relative links and
    images point, so ``![](plot.png)`` shows the repo's own file."""
    tokens = _MD.parse(strip_front_matter(text))
    _point_relative_links(_walk(tokens), files_base)
    return _MD.renderer.render(tokens, _MD.options, {})


def _walk(tokens: Iterable[Token]) -> Iterable[Token]:
    for token in tokens:
        yield token
        if token.children:
            yield from _walk(token.children)


def _point_relative_links(tokens: Iterable[Token], files_base: str) -> None:
    for token in tokens:
        key = "href" if token.type == "link_open" else "src" if token.type == "image" else None
        if key is None:
            continue
        target = token.attrGet(key)
        if not isinstance(target, str) or not target or target.startswith(("#", "/", "?")):
            continue
        if _SCHEME.match(target):  # absolute (the validator already refused the unsafe schemes)
            continue
        token.attrSet(key, files_base + target.removeprefix("./"))
