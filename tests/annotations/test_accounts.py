"""Sign up, log in and out, password reset by email, replies in the inbox (memberships:
test_membership; mentions: test_mentions)."""

import re
from typing import Any

import pytest
from django.core import mail
from django.test import Client
from django.urls import reverse

pytestmark = pytest.mark.django_db


def test_signup_rejects_bad_input_and_stores_nothing(institutions: dict[str, Any]) -> None:
    from django.contrib.auth import get_user_model

    client = Client()
    bad = {"username": "x", "email": "not-an-email", "password1": "a", "password2": "b"}
    assert client.post(reverse("annotations:signup"), bad).status_code == 400
    assert not get_user_model().objects.filter(username="x").exists()


def test_log_in_and_out(people: dict[str, Any]) -> None:
    client = Client()
    response = client.post(reverse("login"), {"username": "alice", "password": "pw-12345!"})
    assert response.status_code == 302
    assert client.get(reverse("annotations:inbox")).status_code == 200
    assert client.post(reverse("logout")).status_code == 302
    assert client.get(reverse("annotations:inbox")).status_code == 302


def test_password_reset_by_email(people: dict[str, Any]) -> None:
    client = Client()
    assert client.get(reverse("password_reset")).status_code == 200
    response = client.post(reverse("password_reset"), {"email": "alice@mit.edu"})
    assert response.status_code == 302
    assert len(mail.outbox) == 1
    link = re.search(r"https?://[^\s]+/reset/[^\s]+/", mail.outbox[0].body)
    assert link is not None
    page = client.get(link.group(0), follow=True)
    assert page.status_code == 200 and "Choose a new password" in page.content.decode()
    form_url = page.redirect_chain[-1][0]
    done = client.post(
        form_url, {"new_password1": "a-new-pw-2026!", "new_password2": "a-new-pw-2026!"}
    )
    assert done.status_code == 302
    assert Client().login(username="alice", password="a-new-pw-2026!")


def test_replies_reach_the_inbox(
    clients: dict[str, Client], people: dict[str, Any], unit: Any
) -> None:
    from annotations.comments import comment_create

    comment = comment_create(author=people["alice"], body="Question.", unit=unit)
    comment_create(author=people["bea"], body="Answer.", parent=comment)
    inbox = clients["alice"].get(reverse("annotations:inbox")).content.decode()
    assert "<bdi>Bea B.</bdi> replied to you" in inbox
