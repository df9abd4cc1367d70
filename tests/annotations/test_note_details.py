"""What notes and comments show: edge signs that contradict the stored connections, what the
sanitizer removed, unit shorthands as links, a single-spaced revision diff, and the
"Moderation" menu only for those who moderate."""

import html
import re
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

pytestmark = pytest.mark.django_db

NEW_NOTE = {
    "title": "Curves",
    "body": "Curve detectors.",
    "units": "inceptionv1/mixed4b/3\ninceptionv1 4c:447",
    "edges": "1 -> 2",
    "visibility": "public",
    "publish": "1",
}


@pytest.fixture
def inhibitory_connection(inceptionv1: Any) -> None:
    """mixed4b:3 → mixed4c:447 is stored with a weight of -0.101."""
    from rendering.models import Connection, LayerConnection

    mixed4b, mixed4c = (inceptionv1.layers.get(name=n) for n in ("mixed4b", "mixed4c"))
    pair = LayerConnection.objects.create(
        source=mixed4b, target=mixed4c, method="direct", kernel_size=1, matrix="m.npy"
    )
    Connection.objects.create(
        unit=mixed4c.units.get(index=447),
        direction="in",
        pair=pair,
        other_indices=[7, 3],
        strengths=[0.9, -0.101],
        kernels=b"",
    )


def _text(response: Any) -> str:
    return html.unescape(re.sub(r"<[^>]+>", "", response.content.decode()))


def test_an_edge_whose_sign_contradicts_the_stored_connection_is_flagged(
    clients: dict[str, Client], inhibitory_connection: None
) -> None:
    from annotations.models import Note

    saved = clients["alice"].post(reverse("annotations:note-create"), NEW_NOTE, follow=True)
    text = _text(saved)
    assert "Saved, but 1 edge contradicts the stored connections" in text  # when saving
    warning = (
        "mixed4b:3 excites mixed4c:447 as written, but the stored connection is -0.101 "
        "(inhibitory): check the sign"
    )
    assert warning in text
    note = Note.objects.get()
    page = _text(clients["anon"].get(note.get_absolute_url()))  # every reader sees it
    assert warning in page and "(strength -0.101)" in page
    agreeing = clients["alice"].post(
        reverse("annotations:note-create"), {**NEW_NOTE, "edges": "1 -| 2"}, follow=True
    )
    assert "contradict" not in _text(agreeing) and "check the sign" not in _text(agreeing)


def test_a_strength_written_against_the_declared_sign_is_flagged(
    clients: dict[str, Client], make_note: Any
) -> None:
    note = make_note(edges="1 -| 2 0.4")  # no stored connection between them
    page = _text(clients["anon"].get(note.get_absolute_url()))
    assert "inhibits mixed4c:448 as written, but the strength given is +0.400" in page


def test_the_author_is_told_what_the_sanitizer_removed(
    clients: dict[str, Client], unit: Any
) -> None:
    from annotations.models import Comment, Note

    body = "See ![a cat](https://tracker.example/cat.png) and [the file](ftp://files.example/x)."
    saved = clients["alice"].post(
        reverse("annotations:note-create"), {**NEW_NOTE, "edges": "", "body": body}, follow=True
    )
    text = _text(saved)
    assert "Not shown: the image “a cat” (https://tracker.example/cat.png)" in text
    assert "Not shown: the link to ftp://files.example/x: only http, https and mailto" in text
    assert "<img" not in Note.objects.get().body_html
    discussion = reverse("annotations:unit-discussion", kwargs={"unit_id": unit.pk})
    posted = clients["bea"].post(
        discussion, {"body": "![chart](https://x.example/c.png)"}, follow=True
    )
    assert "Not shown: the image “chart” (https://x.example/c.png)" in _text(posted)
    assert "<img" not in Comment.objects.get().body_html
    plain = clients["bea"].post(discussion, {"body": "Nothing to remove here."}, follow=True)
    assert "Not shown" not in _text(plain)


def test_unit_shorthands_in_comments_and_notes_are_links(
    clients: dict[str, Client], unit: Any, inceptionv1: Any, make_note: Any
) -> None:
    from annotations.models import Comment

    conv = inceptionv1.layers.get(name="conv2d2").units.get(index=5)
    other = inceptionv1.layers.get(name="mixed4c").units.get(index=448)
    discussion = reverse("annotations:unit-discussion", kwargs={"unit_id": unit.pk})
    body = (
        "Compare conv2d2:5, see 4c:448 and inceptionv1 conv2d2:5; not at 10:30, "
        "nor nope:3, nor `conv2d2:5` in code."
    )
    clients["alice"].post(discussion, {"body": body})
    comment_html = Comment.objects.get().body_html
    conv_link = f'<a href="{conv.get_versioned_url()}" rel="nofollow ugc noopener noreferrer">'
    assert f"Compare {conv_link}conv2d2:5</a>" in comment_html
    assert f'see <a href="{other.get_versioned_url()}"' in comment_html  # "see" is no model
    assert f"{conv_link}inceptionv1 conv2d2:5</a>" in comment_html
    assert "at 10:30" in comment_html and "nor nope:3" in comment_html
    assert "<code>conv2d2:5</code>" in comment_html
    page = clients["anon"].get(discussion).content.decode()
    assert f"{conv_link}conv2d2:5</a>" in page
    note = make_note(body="Fed by conv2d2:5.")  # the same code path
    assert f"Fed by {conv_link}conv2d2:5</a>" in note.body_html


def test_the_revision_diff_is_single_spaced(
    clients: dict[str, Client], make_note: Any, people: dict[str, Any]
) -> None:
    from annotations.notes import note_update

    note = make_note(body="one\ntwo\nthree")
    note_update(note=note, editor=people["alice"], title=note.title, body="one\n2\nthree", units="")
    page = clients["anon"].get(reverse("annotations:note-history", kwargs={"pk": note.pk}))
    diff = re.search(r'<pre class="diff">(.*?)</pre>', page.content.decode(), re.S)
    assert diff is not None
    lines = re.findall(r'<span class="(\w+)">(.*?)</span>', diff.group(1), re.S)
    assert ("del", "-two") in lines and ("add", "+2") in lines and ("same", " one") in lines
    # Each line is one block (CSS), with nothing between them that would add a blank line.
    assert re.sub(r'<span class="\w+">.*?</span>', "", diff.group(1), flags=re.S) == ""
    from django.contrib.staticfiles import finders

    css = finders.find("css/annotations.css")
    assert css is not None
    with open(css, encoding="utf-8") as f:  # the rule that makes each line one block
        assert "pre.diff span { display: block; }" in f.read()


def test_the_moderation_menu_is_only_for_moderators(
    clients: dict[str, Client], staff_client: Client
) -> None:
    link = f'href="{reverse("annotations:moderation")}"'
    for who in ("alice", "sam"):
        assert link not in clients[who].get(reverse("annotations:notes")).content.decode(), who
    assert link in clients["bruno"].get(reverse("annotations:notes")).content.decode()
    assert link in staff_client.get(reverse("annotations:notes")).content.decode()
