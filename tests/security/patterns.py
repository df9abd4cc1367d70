"""The site's URL patterns as the resolver has them, for tests that must reach every view."""

import re
from collections.abc import Iterator
from typing import Any

from django.urls import URLPattern, URLResolver, get_resolver


def endpoints() -> list[tuple[str, URLPattern]]:
    """(the whole path regex without anchors, the pattern) for every view, includes followed."""
    return list(_walk(get_resolver().url_patterns, ""))


def _walk(patterns: list[Any], prefix: str) -> Iterator[tuple[str, URLPattern]]:
    for pattern in patterns:
        regex = pattern.pattern.regex.pattern.removeprefix("^")
        if isinstance(pattern, URLResolver):
            yield from _walk(pattern.url_patterns, prefix + regex)
        else:
            yield prefix + re.sub(r"(\\Z|\$)$", "", regex), pattern


def named_groups(regex: str) -> list[tuple[str | None, str]]:
    """Split a regex into literal pieces (None, regex) and named groups (name, inner regex)."""
    pieces: list[tuple[str | None, str]] = []
    literal, i = "", 0
    while i < len(regex):
        if regex.startswith("(?P<", i):
            if literal:
                pieces.append((None, literal))
                literal = ""
            name_end = regex.index(">", i)
            depth, j, in_class = 1, name_end + 1, False
            while depth:
                char = regex[j]
                if char == "\\":
                    j += 2
                    continue
                if in_class:
                    in_class = char != "]"
                elif char == "[":
                    in_class = True
                elif char == "(":
                    depth += 1
                elif char == ")":
                    depth -= 1
                j += 1
            pieces.append((regex[i + 4 : name_end], regex[name_end + 1 : j - 1]))
            i = j
        else:
            literal += regex[i]
            i += 1
    if literal:
        pieces.append((None, literal))
    return pieces


def concrete_path(regex: str, values: dict[str, str], default: str = "1") -> str:
    """A path the pattern matches, with `values` (or `default`) in its named groups.

    Literal pieces are simple in every pattern of this site (escaped dots and dashes, an
    optional trailing slash), so unescaping them is enough; the result is checked against
    the pattern."""
    parts = []
    for name, inner in named_groups(regex):
        if name is None:
            parts.append(re.sub(r"\\(.)", r"\1", inner).replace("/?", "/"))
        else:
            parts.append(values.get(name, default))
    path = "".join(parts)
    if not re.fullmatch(regex, path):
        raise ValueError(f"{path!r} does not match {regex!r}: give a value for its groups")
    return "/" + path
