"""Moderation through the API: hide and restore notes and comments, list open reports."""

from typing import Any

from rest_framework.test import APIClient

from annotations.comments import comment_create
from annotations.models import Comment, Membership, Note, Report
from annotations.moderation import report_create


def _curate(user: Any) -> None:
    Membership.objects.filter(user=user).update(role=Membership.Role.CURATOR)


def test_curator_hides_and_restores_a_note(api: dict[str, APIClient], people, make_note) -> None:
    note = make_note(author="alice", visibility="institution")
    report = report_create(reporter=people["alice"], reason="spam", note=note)
    _curate(people["amir"])  # an MIT curator sees MIT's institution notes
    answer = api["amir"].post(f"/api/v1/notes/{note.pk}/moderation/", {"hidden": True})
    assert answer.status_code == 200, answer.content
    assert answer.json() == {"id": note.pk, "hidden": True}
    assert Note.objects.get(pk=note.pk).hidden
    assert Report.objects.get(pk=report.pk).status == Report.Status.HIDDEN
    # a hidden note is still reachable by its moderator, to restore it
    answer = api["amir"].post(f"/api/v1/notes/{note.pk}/moderation/", {"hidden": False})
    assert answer.status_code == 200 and not Note.objects.get(pk=note.pk).hidden
    assert Report.objects.get(pk=report.pk).status == Report.Status.OPEN


def test_non_moderator_gets_403(api: dict[str, APIClient], make_note) -> None:
    note = make_note()
    answer = api["sam"].post(f"/api/v1/notes/{note.pk}/moderation/", {"hidden": True})
    assert answer.status_code == 403
    assert answer.json()["error"]["code"] == "permission_denied"
    assert api["anon"].post(
        f"/api/v1/notes/{note.pk}/moderation/", {"hidden": True}
    ).status_code in {
        401,
        403,
    }
    assert not Note.objects.get(pk=note.pk).hidden


def test_curator_elsewhere_gets_404_on_an_institution_note(
    api: dict[str, APIClient], people, make_note
) -> None:
    note = make_note(author="alice", visibility="institution")  # MIT only
    comment = comment_create(author=people["amir"], body="nice", note=note)
    answer = api["bruno"].post(f"/api/v1/notes/{note.pk}/moderation/", {"hidden": True})
    assert answer.status_code == 404
    answer = api["bruno"].post(f"/api/v1/comments/{comment.pk}/moderation/", {"hidden": True})
    assert answer.status_code == 404
    assert not Note.objects.get(pk=note.pk).hidden
    assert not Comment.objects.get(pk=comment.pk).hidden
    # drafts, too
    draft = make_note(author="alice", publish=False)
    answer = api["staff"].post(f"/api/v1/notes/{draft.pk}/moderation/", {"hidden": True})
    assert answer.status_code == 404


def test_curator_hides_a_unit_comment(api: dict[str, APIClient], people, unit) -> None:
    comment = comment_create(author=people["sam"], body="spam", unit=unit)
    answer = api["bruno"].post(f"/api/v1/comments/{comment.pk}/moderation/", {"hidden": True})
    assert answer.status_code == 200 and Comment.objects.get(pk=comment.pk).hidden


def test_read_token_gets_403(token_client, people, make_note) -> None:
    note = make_note()
    client = token_client("staff", scope="read")
    answer = client.post(f"/api/v1/notes/{note.pk}/moderation/", {"hidden": True})
    assert answer.status_code == 403
    assert not Note.objects.get(pk=note.pk).hidden
    write = token_client("staff", scope="write")
    assert write.post(f"/api/v1/notes/{note.pk}/moderation/", {"hidden": True}).status_code == 200


def test_hidden_must_be_given(api: dict[str, APIClient], make_note) -> None:
    note = make_note()
    assert api["staff"].post(f"/api/v1/notes/{note.pk}/moderation/", {}).status_code == 400


def test_reports_list_for_moderators_only_what_they_may_see(
    api: dict[str, APIClient], people, make_note, unit
) -> None:
    mit_note = make_note(author="alice", visibility="institution")
    public = make_note(author="bea")
    on_unit = comment_create(author=people["sam"], body="hm", unit=unit)
    hidden_mit = report_create(reporter=people["amir"], reason="a", note=mit_note)
    about_public = report_create(reporter=people["sam"], reason="b", note=public)
    about_comment = report_create(reporter=people["alice"], reason="c", comment=on_unit)
    dismissed = report_create(reporter=people["sam"], reason="d", note=public)
    Report.objects.filter(pk=dismissed.pk).update(status=Report.Status.DISMISSED)

    assert api["sam"].get("/api/v1/reports/").status_code == 403
    assert api["anon"].get("/api/v1/reports/").status_code in {401, 403}

    seen = {r["id"] for r in api["bruno"].get("/api/v1/reports/").json()["results"]}
    assert seen == {about_public.pk, about_comment.pk}  # not MIT's note, not dismissed ones
    rows = api["staff"].get("/api/v1/reports/").json()["results"]
    assert {r["id"] for r in rows} == {about_public.pk, about_comment.pk}  # staff: not a member
    _curate(people["amir"])
    rows = api["amir"].get("/api/v1/reports/").json()["results"]
    assert {r["id"] for r in rows} == {hidden_mit.pk, about_public.pk, about_comment.pk}
    row = next(r for r in rows if r["id"] == hidden_mit.pk)
    assert row["note_url"] == f"http://testserver/api/v1/notes/{mit_note.pk}/"
    assert row["status"] == "open" and row["reporter"] == "amir" and row["comment_url"] is None
