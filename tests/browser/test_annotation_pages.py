"""In a real browser: the revision diff is single-spaced, and a new account at a verified
domain is told to confirm its address (and joins once it follows the mailed link)."""

import os
import re
from pathlib import Path
from typing import Any

import pytest
from django.core import mail

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


def test_the_diff_is_single_spaced_and_signing_up_asks_to_confirm(
    live_server: Any, browser: Any, tmp_path: Path, fast_passwords: None
) -> None:
    from annotations.models import Institution, Membership
    from annotations.notes import note_create, note_update
    from annotations.people import user_signup

    Institution.objects.create(name="North", slug="north", email_domains="north.example")
    alice = user_signup(username="alice", email="alice@example.org", password="pw-12345!")
    note = note_create(
        author=alice, title="Curves", body="one\ntwo\nthree\nfour", units="", publish=True,
        visibility="public",
    )  # fmt: skip
    note_update(note=note, editor=alice, title="Curves", body="one\n2\nthree\n4", units="")
    page = browser.new_page(viewport={"width": 1000, "height": 800})
    page.goto(f"{live_server.url}/notes/{note.pk}/history/")
    tops = page.eval_on_selector_all(
        "pre.diff span", "spans => spans.map(s => s.getBoundingClientRect().top)"
    )
    height = page.eval_on_selector("pre.diff span", "s => s.getBoundingClientRect().height")
    steps = {round(b - a, 1) for a, b in zip(tops, tops[1:], strict=False)}
    assert len(tops) >= 8 and steps == {round(height, 1)}, (steps, height)
    page.screenshot(path=str(tmp_path / "diff.png"), full_page=True)

    page.goto(f"{live_server.url}/accounts/signup/")
    page.get_by_label("Username").fill("carla")
    page.get_by_label("Email").fill("carla@north.example")
    page.get_by_label("Password", exact=True).fill("long-enough-pw-1")
    page.get_by_label("Password confirmation").fill("long-enough-pw-1")
    page.get_by_role("button", name="Create account").click()
    banner = page.locator("#confirm-address")
    assert "Confirm your address to join North" in banner.inner_text()
    page.screenshot(path=str(tmp_path / "profile.png"), full_page=True)
    assert not Membership.objects.filter(user__username="carla").exists()
    (message,) = mail.outbox
    link = re.search(r"https?://\S+/accounts/confirm/\S+/", message.body)
    assert link is not None
    page.goto(link.group(0))
    page.get_by_role("button", name="Confirm").click()
    assert "You are now a member of North" in page.inner_text("main")
    assert Membership.objects.get(user__username="carla").institution.slug == "north"
    if os.environ.get("SCREENSHOTS"):
        for name in ("diff.png", "profile.png"):
            (Path(os.environ["SCREENSHOTS"]) / name).write_bytes((tmp_path / name).read_bytes())
