"""Oversized bodies and too many fields are refused before a view runs; nothing is stored.
The limit still lets the largest honest note through."""

import json
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.test import Client
from django.urls import reverse

pytestmark = pytest.mark.django_db

NOTE = {"title": "T", "body": "B", "units": "", "edges": "", "visibility": "public"}
API_NOTE = {"title": "T", "body": "B", "units": ["inceptionv1 4c:447"], "visibility": "public"}


def _too_big() -> str:
    return "x" * (django_settings.DATA_UPLOAD_MAX_MEMORY_SIZE + 1)


def test_the_limits_are_set_deliberately() -> None:
    assert django_settings.DATA_UPLOAD_MAX_MEMORY_SIZE == 1024 * 1024
    assert django_settings.FILE_UPLOAD_MAX_MEMORY_SIZE == 1024 * 1024
    assert django_settings.DATA_UPLOAD_MAX_NUMBER_FIELDS == 1000


def test_an_oversized_form_is_refused_and_stores_nothing(login: Any, unit: Any) -> None:
    from annotations.models import Comment, Note

    client = login("alice")
    padded = {**NOTE, "padding": _too_big()}  # the note itself is valid
    assert client.post(reverse("annotations:note-create"), padded).status_code == 400
    discussion = reverse("annotations:unit-discussion", kwargs={"unit_id": unit.pk})
    assert client.post(discussion, {"body": "hi", "padding": _too_big()}).status_code == 400
    assert Note.objects.count() == 0 and Comment.objects.count() == 0


def test_an_oversized_signup_is_refused(institutions: dict[str, Any]) -> None:
    from django.contrib.auth import get_user_model

    form = {
        "username": "mallory",
        "email": "m@example.org",
        "password1": "a-long-pass-phrase-9",
        "password2": "a-long-pass-phrase-9",
        "display_name": _too_big(),
    }
    assert Client().post(reverse("annotations:signup"), form).status_code == 400
    assert not get_user_model().objects.filter(username="mallory").exists()


def test_too_many_fields_are_refused(login: Any) -> None:
    from annotations.models import Note

    fields = {f"f{i}": "1" for i in range(django_settings.DATA_UPLOAD_MAX_NUMBER_FIELDS + 1)}
    response = login("alice").post(reverse("annotations:note-create"), {**NOTE, **fields})
    assert response.status_code == 400
    assert Note.objects.count() == 0


@pytest.mark.parametrize("as_token", [False, True])
def test_an_oversized_api_body_is_refused_and_stores_nothing(
    as_token: bool, people: dict[str, Any], token_client_for: Any, inceptionv1: Any
) -> None:
    from rest_framework.test import APIClient

    from annotations.models import Note

    if as_token:
        client = token_client_for("alice")
    else:
        client = APIClient()
        client.force_login(people["alice"])
    body = json.dumps({**API_NOTE, "padding": _too_big()})
    response = client.post("/api/v1/notes/", body, content_type="application/json")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "request_too_large"  # the API's error format
    assert Note.objects.count() == 0
    # The same note without the padding is accepted: the refusal was the size.
    response = client.post("/api/v1/notes/", json.dumps(API_NOTE), content_type="application/json")
    assert response.status_code == 201, response.content
    assert Note.objects.count() == 1


@pytest.fixture
def token_client_for(people: dict[str, Any]) -> Any:
    from rest_framework.test import APIClient

    from annotations.tokens import token_create

    def make(name: str) -> APIClient:
        _, secret = token_create(user=people[name], name="script", scope="write")
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Token {secret}")
        return client

    return make


def test_the_largest_honest_note_fits_under_the_limit(login: Any) -> None:
    from annotations.models import NOTE_BODY_MAX, Note

    # 20,000 four-byte characters, URL-encoded: 240 kB, well under the 1 MiB limit.
    note = {**NOTE, "body": "😀" * NOTE_BODY_MAX}
    response = login("alice").post(reverse("annotations:note-create"), note)
    assert response.status_code == 302
    assert Note.objects.get().body == "😀" * NOTE_BODY_MAX
