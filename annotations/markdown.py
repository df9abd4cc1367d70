"""Markdown to safe HTML: markdown-it-py (CommonMark, raw HTML off), then nh3 as the wall.

markdown-it already escapes raw HTML when `html` is off and refuses `javascript:` links;
nh3 is the second line that does not depend on the first being right: only the tags and
attributes below survive, links may only be http, https or mailto, and every link gets
`rel="nofollow ugc noopener noreferrer"`. Images are not allowed (remote images track readers).
"""

import re

import nh3
from markdown_it import MarkdownIt

__all__ = ["render_markdown", "mentioned_usernames"]

_TAGS = {
    "p", "br", "hr", "em", "strong", "code", "pre", "blockquote", "ul", "ol", "li", "a",
    "h1", "h2", "h3", "h4", "h5", "h6", "table", "thead", "tbody", "tr", "th", "td", "del",
}  # fmt: skip
_ATTRIBUTES = {"a": {"href", "title"}, "ol": {"start"}, "th": {"align"}, "td": {"align"}}
_SCHEMES = {"http", "https", "mailto"}

_md = MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False}).enable(
    "table"
)
_MENTION = re.compile(r"(?<![\w@/.])@([A-Za-z0-9_.+-]{1,150})\b")


def render_markdown(text: str) -> str:
    """Sanitized HTML for `text`. Safe to print unescaped, whatever `text` holds."""
    html = _md.render(text)
    return nh3.clean(
        html,
        tags=_TAGS,
        attributes=_ATTRIBUTES,
        url_schemes=_SCHEMES,
        link_rel="nofollow ugc noopener noreferrer",
        strip_comments=True,
    )


def mentioned_usernames(text: str) -> set[str]:
    """`@name` mentions in `text` (not inside e-mail addresses or URLs)."""
    return {match.rstrip(".") for match in _MENTION.findall(text)}
