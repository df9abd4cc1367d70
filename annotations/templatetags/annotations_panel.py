"""`{% unit_annotations_panel unit %}`: the unit page's notes and comments, in one line, as the
reader may see them (public notes only on the anonymous page that is cached for everyone)."""

from typing import Any

from django import template

from annotations.selectors import unit_annotations
from neurons.models import Unit

register = template.Library()


@register.inclusion_tag("annotations/_unit_panel.html", takes_context=True)
def unit_annotations_panel(context: template.Context, unit: Unit) -> dict[str, Any]:
    request = context.get("request")
    reader = getattr(request, "user", None)
    return {"annotations": unit_annotations(unit, reader), "unit": unit}
