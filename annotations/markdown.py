"""Markdown to safe HTML: markdown-it-py (CommonMark, raw HTML off), then nh3 as the wall.

markdown-it already escapes raw HTML when `html` is off and refuses `javascript:` links;
nh3 is the second line that does not depend on the first being right: only the tags and
attributes below survive, links may only be http, https or mailto, and every link gets
`rel="nofollow ugc noopener noreferrer"`. Images are not allowed (remote images track readers);
`removed_parts` says what the sanitizer drops, so the author is told rather than surprised.

Unit shorthands in text (`conv2d2:5`, `mixed4c:447`, `inceptionv1 4c:447`) become links to the
unit, the way a note's unit list names them (`neurons.selectors.unit_by_shorthand`): in notes
and comments alike, since both render here. A bare `layer:index` means a unit of `model` (the
unit or note written about) when it has that layer, else of InceptionV1, as in the Circuits
thread; text that names no unit stays text.
"""

import re
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import nh3
from markdown_it import MarkdownIt
from markdown_it.rules_core import StateCore
from markdown_it.token import Token

if TYPE_CHECKING:
    from neurons.models import NetworkModel, Unit

__all__ = ["render_markdown", "removed_parts", "mentioned_usernames"]

_TAGS = {
    "p", "br", "hr", "em", "strong", "code", "pre", "blockquote", "ul", "ol", "li", "a",
    "h1", "h2", "h3", "h4", "h5", "h6", "table", "thead", "tbody", "tr", "th", "td", "del",
}  # fmt: skip
_ATTRIBUTES = {"a": {"href", "title"}, "ol": {"start"}, "th": {"align"}, "td": {"align"}}
_SCHEMES = {"http", "https", "mailto"}
MAX_UNIT_LOOKUPS = 50  # shorthands looked up per text: each costs a few queries on saving

_MENTION = re.compile(r"(?<![\w@/.])@([A-Za-z0-9_.+-]{1,150})\b")
_SHORTHAND = re.compile(
    r"(?<![\w@/.:-])"
    r"(?:(?P<model>[a-z][a-z0-9_-]*(?:@[0-9a-f]{4,16})?)[ /])?"
    r"(?P<unit>(?P<layer>[A-Za-z0-9][A-Za-z0-9_.]*):(?P<index>\d{1,6}))"
    r"(?![\w:])"
)


def _unit(model: str | None, layer: str, index: int) -> "Unit | None":
    from neurons.selectors import unit_following_renames

    return unit_following_renames(model, layer, index) if model else None


def _unit_for(match: re.Match[str], context: "NetworkModel | None") -> tuple["Unit | None", int]:
    """The unit a shorthand names, and where its link starts (a word before `layer:index` is
    part of it only when it is the unit's model)."""
    layer, index = match["layer"].rstrip("."), int(match["index"])
    if match["model"]:
        unit = _unit(match["model"], layer, index)
        if unit is not None:
            return unit, match.start()
    for model in (context.slug if context is not None else None, "inceptionv1"):
        unit = _unit(model, layer, index)
        if unit is not None:
            return unit, match.start("unit")
    return None, match.start("unit")


def _link_units(state: StateCore) -> None:
    """Core rule: split text tokens (outside links and code) at unit shorthands."""
    if state.env.get("no_lookups"):
        return
    context = state.env.get("model")
    budget = [MAX_UNIT_LOOKUPS]
    for block in state.tokens:
        if block.type != "inline" or not block.children:
            continue
        children: list[Token] = []
        in_link = 0
        for token in block.children:
            if token.type == "link_open":
                in_link += 1
            elif token.type == "link_close":
                in_link -= 1
            if token.type != "text" or in_link or ":" not in token.content:
                children.append(token)
                continue
            children.extend(_split(token.content, context, budget))
        block.children = children


def _split(text: str, context: "NetworkModel | None", budget: list[int]) -> list[Token]:
    out: list[Token] = []
    done = 0
    for match in _SHORTHAND.finditer(text):
        if budget[0] <= 0:
            break
        budget[0] -= 1
        unit, start = _unit_for(match, context)
        if unit is None:
            continue
        if start > done:
            out.append(_text(text[done:start]))
        link = Token("link_open", "a", 1, attrs={"href": unit.get_versioned_url()})
        out += [link, _text(text[start : match.end()]), Token("link_close", "a", -1)]
        done = match.end()
    if done < len(text):
        out.append(_text(text[done:]))
    return out


def _text(content: str) -> Token:
    token = Token("text", "", 0)
    token.content = content
    return token


_md = MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False}).enable(
    "table"
)
_md.core.ruler.push("unit_links", _link_units)


def render_markdown(text: str, *, model: "NetworkModel | None" = None) -> str:
    """Sanitized HTML for `text`. Safe to print unescaped, whatever `text` holds. `model`: the
    model a bare `layer:index` names first (the one the text is about)."""
    html = _md.render(text, {"model": model})
    return nh3.clean(
        html,
        tags=_TAGS,
        attributes=_ATTRIBUTES,
        url_schemes=_SCHEMES,
        link_rel="nofollow ugc noopener noreferrer",
        strip_comments=True,
    )


def removed_parts(text: str) -> list[str]:
    """What `render_markdown` leaves out of `text`, in words for its author: images, and the
    targets of links whose scheme is not http, https or mailto."""
    removed: list[str] = []

    def walk(tokens: list[Any]) -> None:
        for token in tokens:
            if token.children:
                walk(token.children)
            if token.type == "image":
                alt = token.content or "no description"
                removed.append(
                    f"the image “{alt}” ({token.attrGet('src')}): images are not shown "
                    "(they would tell their host who reads the page); link to it instead"
                )
            elif token.type == "link_open":
                href = str(token.attrGet("href") or "")
                scheme = urlsplit(href).scheme.lower()
                if scheme and scheme not in _SCHEMES:
                    removed.append(
                        f"the link to {href}: only http, https and mailto links are kept "
                        "(its text stays)"
                    )

    walk(_md.parse(text, {"model": None, "no_lookups": True}))
    return removed


def mentioned_usernames(text: str) -> set[str]:
    """`@name` mentions in `text` (not inside e-mail addresses or URLs)."""
    return {match.rstrip(".") for match in _MENTION.findall(text)}
