"""Moderators act only on what they may read: another institution's institution-only notes,
anyone's drafts and private notes, and the comments on them, are 404 to every moderation
action (dismiss, hide, restore), on pages, in the services, in the API and in the queue."""

from typing import Any

import pytest
from django.test import Client
from django.urls import reverse
from rest_framework.test import APIClient

pytestmark = pytest.mark.django_db


@pytest.fixture
def unreadable(make_note: Any, people: dict[str, Any]) -> dict[str, Any]:
    """alice's (MIT) notes that bruno (an ETH curator) may not read, a comment on each, and an
    open report about each note and each comment."""
    from annotations.models import Comment, Report

    notes = {
        "institution": make_note(title="MIT-only curve note", visibility="institution"),
        "private": make_note(title="Alice private note", visibility="private"),
        "draft": make_note(title="Alice draft note", publish=False),
    }
    out: dict[str, Any] = {}
    for name, note in notes.items():
        # Stored directly: a comment on a draft, or a report by the author, stands for any
        # earlier state (the note was once visible to the reporter, say).
        comment = Comment.objects.create(
            author=people["alice"], note=note, body=f"comment on {name}", body_html="<p>x</p>"
        )
        out[name] = note
        out[f"{name} comment"] = comment
        out[f"{name} report"] = Report.objects.create(
            reporter=people["amir"], note=note, reason=f"report about the {name} note"
        )
        out[f"{name} comment report"] = Report.objects.create(
            reporter=people["amir"], comment=comment, reason=f"report about the {name} comment"
        )
    return out


def _reports(unreadable: dict[str, Any]) -> list[Any]:
    return [value for key, value in unreadable.items() if key.endswith("report")]


def test_a_curator_elsewhere_cannot_dismiss_reports_about_what_they_may_not_read(
    clients: dict[str, Client], unreadable: dict[str, Any]
) -> None:
    for report in _reports(unreadable):
        url = reverse("annotations:report-dismiss", kwargs={"pk": report.pk})
        assert clients["bruno"].post(url).status_code == 404, report.reason
        report.refresh_from_db()
        assert (report.status, report.resolved_by, report.resolved) == ("open", None, None)


def test_a_curator_elsewhere_cannot_hide_or_restore_what_they_may_not_read(
    clients: dict[str, Client], unreadable: dict[str, Any]
) -> None:
    for name in ("institution", "private", "draft"):
        for kind, target in (
            ("note", unreadable[name]),
            ("comment", unreadable[f"{name} comment"]),
        ):
            url = reverse(
                "annotations:moderation-set-hidden", kwargs={"kind": kind, "pk": target.pk}
            )
            for action in ("hide", "restore"):
                assert clients["bruno"].post(url, {"action": action}).status_code == 404
            target.refresh_from_db()
            assert not target.hidden


def test_the_services_refuse_with_not_found_whatever_calls_them(
    people: dict[str, Any], unreadable: dict[str, Any]
) -> None:
    from annotations import moderation
    from annotations.errors import NotVisible

    bruno = people["bruno"]
    for report in _reports(unreadable):
        with pytest.raises(NotVisible):
            moderation.report_dismiss(moderator=bruno, report=report)
    for name in ("institution", "private", "draft"):
        with pytest.raises(NotVisible):
            moderation.moderation_set_hidden(moderator=bruno, hidden=True, note=unreadable[name])
        with pytest.raises(NotVisible):
            moderation.moderation_set_hidden(
                moderator=bruno, hidden=True, comment=unreadable[f"{name} comment"]
            )
        # Reporting what one may not read is refused the same way.
        with pytest.raises(NotVisible):
            moderation.report_create(reporter=people["bea"], reason="x", note=unreadable[name])
    assert all(r.status == "open" for r in _reports(unreadable))


def test_the_queue_and_the_api_show_and_act_on_none_of_it(
    clients: dict[str, Client], people: dict[str, Any], unreadable: dict[str, Any]
) -> None:
    queue = clients["bruno"].get(reverse("annotations:moderation")).content.decode()
    assert "Nothing here." in queue
    for text in ("MIT-only", "private note", "draft note", "comment on", "report about"):
        assert text not in queue
    api = APIClient()
    api.force_login(people["bruno"])
    listed = api.get("/api/v1/reports/").json()
    assert listed["results"] == []
    for name in ("institution", "private", "draft"):
        note, comment = unreadable[name], unreadable[f"{name} comment"]
        for url in (
            f"/api/v1/notes/{note.pk}/moderation/",
            f"/api/v1/comments/{comment.pk}/moderation/",
        ):
            assert api.post(url, {"hidden": True}, format="json").status_code == 404, url


def test_a_curator_of_the_institution_moderates_its_notes_but_not_drafts_or_private_notes(
    clients: dict[str, Client], people: dict[str, Any], unreadable: dict[str, Any]
) -> None:
    from annotations.models import Membership

    Membership.objects.filter(user=people["amir"]).update(role=Membership.Role.CURATOR)
    queue = clients["amir"].get(reverse("annotations:moderation")).content.decode()
    assert "MIT-only curve note" in queue and "report about the institution comment" in queue
    assert "Alice private note" not in queue and "Alice draft note" not in queue
    for name in ("private", "draft"):
        url = reverse("annotations:report-dismiss", kwargs={"pk": unreadable[f"{name} report"].pk})
        assert clients["amir"].post(url).status_code == 404
    for key in ("institution report", "institution comment report"):
        report = unreadable[key]
        url = reverse("annotations:report-dismiss", kwargs={"pk": report.pk})
        assert clients["amir"].post(url).status_code == 302
        report.refresh_from_db()
        assert (report.status, report.resolved_by) == ("dismissed", people["amir"])
    # The author is not a moderator: 403 before anything is looked up.
    url = reverse("annotations:report-dismiss", kwargs={"pk": unreadable["draft report"].pk})
    assert clients["alice"].post(url).status_code == 403
