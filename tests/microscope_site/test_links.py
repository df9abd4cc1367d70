"""`reverse_kept` and the `{% url %}` tag built on it answer what Django's `reverse` does,
under any script prefix, and keep the answer."""

from typing import Any

import pytest
from django.template import Context, Engine, Template, TemplateSyntaxError
from django.urls import NoReverseMatch, reverse, set_script_prefix

from microscope_site import links
from microscope_site.links import reverse_kept

CASES = [
    ("neurons:models", {}),
    ("neurons:layer", {"model": "inceptionv1", "layer": "mixed4c"}),
    ("neurons:unit", {"model": "inceptionv1@3f2a9c81d0b4", "layer": "mixed4c", "index": 447}),
    ("annotations:person", {"username": "ada lovelace"}),  # quoted
    ("annotations:note", {"pk": 12}),
]


@pytest.mark.parametrize(("name", "kwargs"), CASES)
def test_kept_links_are_what_reverse_answers(name: str, kwargs: dict[str, Any]) -> None:
    assert reverse_kept(name, kwargs=kwargs) == reverse(name, kwargs=kwargs)
    try:
        set_script_prefix("/microscope/")
        assert reverse_kept(name, kwargs=kwargs) == reverse(name, kwargs=kwargs)
        assert reverse_kept(name, kwargs=kwargs).startswith("/microscope/")
    finally:
        set_script_prefix("/")
    assert not reverse_kept(name, kwargs=kwargs).startswith("/microscope/")


def test_a_link_asked_again_is_not_reversed_again(monkeypatch: pytest.MonkeyPatch) -> None:
    links._kept.cache_clear()
    calls: list[str] = []
    real = links.reverse

    def counted(*args: Any, **kwargs: Any) -> str:
        calls.append(args[0])
        return real(*args, **kwargs)

    monkeypatch.setattr(links, "reverse", counted)
    for _ in range(3):
        assert reverse_kept("annotations:note", kwargs={"pk": 7}) == "/notes/7/"
    assert calls == ["annotations:note"]


def test_an_argument_other_than_text_or_a_number_is_reversed_each_time(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    class Named:
        def __init__(self, name: str) -> None:
            self.name = name

        def __str__(self) -> str:
            return self.name

    who = Named("ada")
    assert reverse_kept("annotations:person", kwargs={"username": who}) == "/people/ada/"
    who.name = "grace"  # the same object prints differently now
    assert reverse_kept("annotations:person", kwargs={"username": who}) == "/people/grace/"


def test_an_unknown_view_still_raises() -> None:
    with pytest.raises(NoReverseMatch):
        reverse_kept("neurons:no-such-view")


def _render(source: str, **context: Any) -> str:
    return Engine.get_default().from_string(source).render(Context(context))


def test_the_url_tag_renders_as_djangos_does() -> None:
    assert isinstance(Engine.get_default().from_string("{% url 'search' %}"), Template)
    assert _render("{% url 'neurons:layer' model=m layer=l %}", m="inceptionv1", l="mixed4c") == (
        "/models/inceptionv1/mixed4c/"
    )
    assert _render("{% url 'neurons:unit' 'alexnet' 'fc8' 1 %}") == "/models/alexnet/fc8/1/"
    # `as`: into the context, and nothing printed; a bad name gives "" rather than an error.
    assert _render("{% url 'neurons:models' as u %}[{{ u }}]") == "[/models/]"
    assert _render("{% url 'neurons:no-such-view' as u %}[{{ u }}]") == "[]"
    with pytest.raises(NoReverseMatch):
        _render("{% url 'neurons:no-such-view' %}")
    # Escaped as Django's tag escapes it.
    assert _render("{% url 'annotations:person' username=n %}", n="a&b") == "/people/a&amp;b/"
    with pytest.raises(TemplateSyntaxError):
        _render("{% url %}")
