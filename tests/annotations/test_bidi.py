"""Bidirectional control characters ("gnp.exe" shown as "exe.png") never reach a page: every
write drops them (site, API and admin share the services) and names are isolated in <bdi>."""

from typing import Any

import pytest
from django.test import Client
from django.urls import reverse
from rest_framework.test import APIClient

from annotations.bidi import BIDI_CONTROLS

pytestmark = pytest.mark.django_db

RLO, PDF, RLI, PDI, RLM, ALM = "\u202e", "\u202c", "\u2067", "\u2069", "\u200f", "\u061c"
ALL = "".join(sorted(BIDI_CONTROLS))


def _clean(text: str) -> bool:
    return not any(c in text for c in BIDI_CONTROLS)


def test_every_listed_control_is_dropped() -> None:
    from annotations.bidi import strip_bidi

    expected = {0x061C, 0x200E, 0x200F, *range(0x202A, 0x202F), *range(0x2066, 0x206A)}
    assert {ord(c) for c in BIDI_CONTROLS} == expected
    assert strip_bidi(f"photo{RLO}gnp.exe{PDF}") == "photognp.exe"
    assert strip_bidi("عربي and עברית stay") == "عربي and עברית stay"


def test_note_title_body_and_roles(
    clients: dict[str, Client], make_note: Any, people: dict[str, Any]
) -> None:
    from annotations.notes import note_update

    note = make_note(
        title=f"Curves {RLO}gnp.exe{PDF}",
        body=f"Body {RLI}text{PDI} with{ALL} marks",
        units=f"inceptionv1 4c:447, in{RLM}put\ninceptionv1/mixed4c/448",
    )
    note.refresh_from_db()
    assert note.title == "Curves gnp.exe"
    assert note.body == "Body text with marks" and _clean(note.body_html)
    assert note.note_units.get(position=0).role == "input"
    assert _clean(note.revisions.get().title + note.revisions.get().units)
    note_update(
        note=note, editor=people["alice"], title=f"{ALM}Edited", body="b", units="", edges=""
    )
    note.refresh_from_db()
    assert note.title == "Edited"
    page = clients["anon"].get(note.get_absolute_url()).content.decode()
    assert _clean(page) and "<h1><bdi>Edited</bdi></h1>" in page


def test_comment_bodies_on_create_and_edit(
    clients: dict[str, Client], unit: Any, people: dict[str, Any]
) -> None:
    from annotations.models import Comment

    discussion = reverse("annotations:unit-discussion", kwargs={"unit_id": unit.pk})
    clients["alice"].post(discussion, {"body": f"See {RLO}fdp.exe{PDF} here"})
    comment = Comment.objects.get()
    assert comment.body == "See fdp.exe here" and _clean(comment.body_html)
    edit = reverse("annotations:comment-edit", kwargs={"pk": comment.pk})
    clients["alice"].post(edit, {"body": f"Edited {RLI}x{PDI}"})
    comment.refresh_from_db()
    assert comment.body == "Edited x"
    assert _clean(clients["anon"].get(discussion).content.decode())


def test_display_names_on_signup_and_profile(
    clients: dict[str, Client], people: dict[str, Any], institutions: dict[str, Any]
) -> None:
    from annotations.people import profile_update, user_signup

    user = user_signup(
        username="mallory", email="m@example.org", password="pw-12345!", display_name=f"A{RLO}lice"
    )
    assert user.profile.display_name == "Alice"
    profile_update(user=people["alice"], display_name=f"{RLM}Alice{ALM} A.", institution=None)
    people["alice"].profile.refresh_from_db()
    assert people["alice"].profile.display_name == "Alice A."
    page = clients["anon"].get(reverse("annotations:person", kwargs={"username": "alice"}))
    assert "<h1><bdi>Alice A.</bdi></h1>" in page.content.decode()


def test_report_reasons_labels_token_names_and_institution_names(
    clients: dict[str, Client], make_note: Any, people: dict[str, Any], unit: Any
) -> None:
    from annotations.models import Institution, Report
    from annotations.moderation import unit_label_set
    from annotations.tokens import token_create

    note = make_note()
    url = reverse("annotations:note-report", kwargs={"pk": note.pk})
    clients["bea"].post(url, {"reason": f"spam {RLO}moc.evil{PDF}"})
    assert Report.objects.get().reason == "spam moc.evil"
    unit_label_set(unit=unit, label=f"curve {RLO}detector{PDF}", user=people["bruno"])
    unit.refresh_from_db()
    assert unit.curator_label == "curve detector"
    token, _ = token_create(user=people["alice"], name=f"{RLI}script{PDI}")
    assert token.name == "script"
    eth = Institution.objects.get(slug="eth")
    eth.name = f"ETH {RLO}hcirüZ{PDF}"
    eth.save()
    eth.refresh_from_db()
    assert eth.name == "ETH hcirüZ"


def test_the_api_writes_through_the_same_rules(people: dict[str, Any]) -> None:
    api = APIClient()
    api.force_login(people["alice"])
    answer = api.post(
        "/api/v1/notes/",
        {"title": f"API {RLO}gnp.exe{PDF}", "body": f"x{RLM}y", "units": [], "publish": True},
        format="json",
    )
    assert answer.status_code == 201, answer.content
    assert answer.json()["title"] == "API gnp.exe"
