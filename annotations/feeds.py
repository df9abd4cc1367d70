"""An Atom feed of newly published public notes."""

from datetime import datetime

from django.contrib.syndication.views import Feed
from django.db.models import QuerySet
from django.urls import reverse
from django.utils.feedgenerator import Atom1Feed

from annotations import selectors
from annotations.models import Note

ITEMS = 50


class PublicNotesFeed(Feed):  # type: ignore[type-arg]
    feed_type = Atom1Feed
    title = "Microscope: new circuit notes"
    subtitle = "Circuit notes newly published on Microscope"

    def link(self) -> str:
        return reverse("annotations:notes")

    def items(self) -> QuerySet[Note]:
        return selectors.with_people(selectors.public_notes()).order_by("-published")[:ITEMS]

    def item_title(self, item: Note) -> str:
        return item.title

    def item_description(self, item: Note) -> str:
        return item.body_html  # sanitized when stored; the feed generator escapes it again

    def item_author_name(self, item: Note) -> str:
        return selectors.author_name(item.author)

    def item_pubdate(self, item: Note) -> datetime | None:
        return item.published

    def item_updateddate(self, item: Note) -> datetime:
        return item.updated
