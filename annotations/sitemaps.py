"""The sitemap's notes section: public, published, not hidden."""

from typing import Any

from django.contrib.sitemaps import Sitemap
from django.db.models import QuerySet

from annotations.models import Note
from annotations.selectors import public_notes


class NoteSitemap(Sitemap):  # type: ignore[type-arg]
    limit = 50_000

    def items(self) -> QuerySet[Note]:
        return public_notes().order_by("pk")

    def lastmod(self, item: Note) -> Any:
        return item.updated
