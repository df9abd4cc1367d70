"""`{% unit_annotations_panel unit %}`: the unit page's notes and comments, in one line."""

from typing import Any

from django import template

from annotations.selectors import unit_annotations
from neurons.models import Unit

register = template.Library()


@register.inclusion_tag("annotations/_unit_panel.html")
def unit_annotations_panel(unit: Unit) -> dict[str, Any]:
    return {"annotations": unit_annotations(unit), "unit": unit}
