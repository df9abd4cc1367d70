"""`{% connected_units %}` prints a connections tab's items as the template loop it replaced
did, byte for byte, with every value escaped."""

from types import SimpleNamespace

import pytest
from django.template import Context, Template

from rendering.selectors import ConnectedUnit
from rendering.templatetags.connected_units import connected_units

# The loop the tag replaced (templates/neurons/unit_detail.html before it), kept as the
# reference: the tag must print what it printed.
LOOP = (
    "{% for c in entries %}\n"
    "    {% ifchanged c.layer %}{% url 'neurons:layer' model=model_ref layer=c.layer"
    " as layer_url %}{% endifchanged %}\n"
    '    <li><a href="{{ layer_url }}{{ c.index }}/?technique=connections">\n'
    '      {% if c.thumbnail %}<img src="{{ c.thumbnail.thumbnail.url }}" width="48"'
    ' height="48" loading="lazy" alt="">{% endif %}\n'
    "      {% with name=c.name strength=c.strength_text size=c.kernel_size %}"
    "<span>{{ name }}</span></a>\n"
    '      <span class="strength {{ c.tone }}">{{ strength }}{% if c.sign == "mixed" %}'
    " <small>mixed</small>{% endif %}</span>\n"
    '      <img class="kernel" src="{{ c.kernel_png }}" width="36" height="36"'
    ' alt="{{ size }}×{{ size }} kernel of {{ name }}, strength {{ strength }}">{% endwith %}\n'
    "    </li>\n"
    "  {% endfor %}"
)


def _unit(layer: str, index: int, strength: float, sign: str, thumbnail: str | None = None):
    return ConnectedUnit(
        layer=layer,
        index=index,
        strength=strength,
        sign=sign,
        kernel_png="data:image/png;base64,iVBORw0KGgo=",
        kernel_size=3,
        thumbnail=SimpleNamespace(thumbnail=SimpleNamespace(url=thumbnail)) if thumbnail else None,  # type: ignore[arg-type]
    )


ENTRIES = [
    _unit("mixed3a", 7, 0.12345, "excitatory", thumbnail="/media/t/a&b.png"),
    _unit("mixed3a", 12, -0.5, "inhibitory"),
    _unit("mixed3a", 3, 0.0004, "mixed"),
    _unit("mixed3b", 0, -0.0004, "mixed", thumbnail='/media/t/"q".png'),
    _unit("mixed3b", 255, 1.9995, "excitatory"),
]


@pytest.mark.parametrize("model_ref", ["inceptionv1", "inceptionv1@0123abcd"])
def test_the_tag_prints_what_the_template_loop_printed(model_ref: str) -> None:
    expected = Template(LOOP).render(Context({"entries": ENTRIES, "model_ref": model_ref}))
    assert connected_units(ENTRIES, model_ref) == expected
    assert connected_units([], model_ref) == ""


def test_each_item_links_its_unit_and_escapes_what_it_prints() -> None:
    html = connected_units(ENTRIES, "inceptionv1")
    assert html.count("<li>") == len(ENTRIES)
    assert 'href="/models/inceptionv1/mixed3a/12/?technique=connections"' in html
    assert 'href="/models/inceptionv1/mixed3b/255/?technique=connections"' in html
    assert 'src="/media/t/a&amp;b.png"' in html and 'src="/media/t/&quot;q&quot;.png"' in html
    assert '<span class="strength neg">-0.500</span>' in html
    assert '<span class="strength mixed">0.000 <small>mixed</small></span>' in html
    assert 'alt="3×3 kernel of mixed3b:255, strength 2.000"' in html
