"""`{% if user|moderates %}`: the menu shows "Moderation" only to those who may moderate."""

from typing import Any

from django import template

from annotations.selectors import is_moderator

register = template.Library()


@register.filter
def moderates(user: Any) -> bool:
    """Curators of any institution, and staff (the moderation queue's own rule)."""
    return is_moderator(user)
