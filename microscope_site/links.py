"""`reverse()`, kept per process. Django's `reverse` cost ~0.06–0.19 ms of CPU a link here (it
looks up the language, the script prefix and the URL configuration and matches the pattern
each time), and the site's pages and API answers make ~20 links each, ~8 % of the CPU of the
cold minute after a cache flush. An answer depends only on the URL configuration, the script
prefix, the view's name and its arguments, so it is kept under all of them; arguments other
than strings and numbers (a model instance prints as it likes) are always reversed afresh."""

from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import Any

from django.conf import settings
from django.template import Library
from django.template.base import Parser, Token
from django.template.defaulttags import URLNode, url
from django.urls import get_script_prefix, get_urlconf, reverse
from django.utils.html import conditional_escape

_PLAIN = (str, int, float, bool, type(None))


def reverse_kept(
    viewname: str,
    args: Sequence[Any] = (),
    kwargs: Mapping[str, Any] | None = None,
    current_app: str | None = None,
) -> str:
    """What `reverse(viewname, args=args, kwargs=kwargs, current_app=current_app)` answers."""
    items = tuple(sorted((kwargs or {}).items()))
    if not all(isinstance(value, _PLAIN) for value in (*args, *(v for _, v in items))):
        return reverse(viewname, args=args, kwargs=dict(kwargs or {}), current_app=current_app)
    urlconf = get_urlconf() or settings.ROOT_URLCONF
    return _kept(get_script_prefix(), urlconf, viewname, tuple(args), items, current_app)


@lru_cache(maxsize=16384)
def _kept(
    prefix: str,
    urlconf: Any,
    viewname: str,
    args: tuple[Any, ...],
    items: tuple[tuple[str, Any], ...],
    current_app: str | None,
) -> str:
    return reverse(
        viewname, urlconf=urlconf, args=args, kwargs=dict(items), current_app=current_app
    )


register = Library()


class KeptURLNode(URLNode):
    """`{% url %}` answered by `reverse_kept`; otherwise Django's tag as it is."""

    def render(self, context: Any) -> str:
        from django.urls import NoReverseMatch

        args = [arg.resolve(context) for arg in self.args]
        kwargs = {name: value.resolve(context) for name, value in self.kwargs.items()}
        try:  # as Django's tag finds it
            current_app = context.request.current_app
        except AttributeError:
            try:
                current_app = context.request.resolver_match.namespace
            except AttributeError:
                current_app = None
        found = ""
        try:
            found = reverse_kept(self.view_name.resolve(context), args, kwargs, current_app)
        except NoReverseMatch:
            if self.asvar is None:
                raise
        if self.asvar:
            context[self.asvar] = found
            return ""
        return conditional_escape(found) if context.autoescape else found


@register.tag(name="url")
def kept_url(parser: Parser, token: Token) -> KeptURLNode:
    node = url(parser, token)
    return KeptURLNode(node.view_name, node.args, node.kwargs, node.asvar)
