"""Reports, the queue, hiding and restoring: hidden content leaves public pages but is kept."""

from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

pytestmark = pytest.mark.django_db


def test_reporting_needs_a_login_and_a_reason(clients: dict[str, Client], make_note: Any) -> None:
    from annotations.models import Report

    note = make_note()
    url = reverse("annotations:note-report", kwargs={"pk": note.pk})
    assert clients["anon"].post(url, {"reason": "spam"}).status_code == 302  # to log in
    assert clients["bea"].post(url, {"reason": ""}).status_code == 400
    assert clients["bea"].post(url, {"reason": "x" * 1001}).status_code == 400
    assert Report.objects.count() == 0
    assert clients["bea"].post(url, {"reason": "Off topic."}).status_code == 200
    report = Report.objects.get()
    assert (report.note, report.reporter.username, report.status) == (note, "bea", "open")


def test_a_curator_hides_a_note_everywhere_public_and_can_restore_it(
    clients: dict[str, Client], make_note: Any, people: dict[str, Any], inceptionv1: Any, unit: Any
) -> None:
    from annotations.models import Report
    from annotations.moderation import report_create
    from annotations.selectors import unit_annotations

    note = make_note(title="Spammy note")
    report_create(reporter=people["bea"], reason="spam", note=note)
    queue = clients["bruno"].get(reverse("annotations:moderation")).content.decode()
    assert "Spammy note" in queue and "spam" in queue
    version = inceptionv1.content_version
    hide = reverse("annotations:moderation-set-hidden", kwargs={"kind": "note", "pk": note.pk})
    assert clients["alice"].post(hide, {"action": "hide"}).status_code == 403  # not a curator
    assert clients["bruno"].post(hide, {"action": "hide"}).status_code == 302
    note.refresh_from_db()
    assert note.hidden and note.body  # kept
    assert Report.objects.get().status == "hidden"
    inceptionv1.refresh_from_db()
    assert inceptionv1.content_version > version  # cached unit pages refresh
    assert unit_annotations(unit)["notes"] == []
    assert clients["anon"].get(note.get_absolute_url()).status_code == 404
    assert clients["amir"].get(note.get_absolute_url()).status_code == 404
    assert clients["alice"].get(note.get_absolute_url()).status_code == 200  # the author
    assert clients["bruno"].get(note.get_absolute_url()).status_code == 200  # moderators
    for url in (reverse("annotations:notes"), reverse("annotations:feed"), "/sitemap-notes.xml"):
        assert "Spammy note" not in clients["anon"].get(url).content.decode(), url
    assert clients["bruno"].post(hide, {"action": "restore"}).status_code == 302
    note.refresh_from_db()
    assert not note.hidden
    assert clients["anon"].get(note.get_absolute_url()).status_code == 200
    assert Report.objects.get().status == "open"


def test_a_hidden_comment_leaves_a_placeholder(
    clients: dict[str, Client], people: dict[str, Any], unit: Any, staff_client: Client
) -> None:
    from annotations.comments import comment_create

    comment = comment_create(author=people["sam"], body="Buy cheap watches", unit=unit)
    hide = reverse(
        "annotations:moderation-set-hidden", kwargs={"kind": "comment", "pk": comment.pk}
    )
    assert staff_client.post(hide, {"action": "hide"}).status_code == 302
    page = clients["anon"].get(reverse("annotations:unit-discussion", kwargs={"unit_id": unit.pk}))
    assert "comment hidden by moderators" in page.content.decode()
    assert "cheap watches" not in page.content.decode()
    person = clients["anon"].get(reverse("annotations:person", kwargs={"username": "sam"}))
    assert "on inceptionv1" not in person.content.decode()
    comment.refresh_from_db()
    assert comment.body == "Buy cheap watches"


def test_dismissing_a_report_keeps_the_content(
    clients: dict[str, Client], make_note: Any, people: dict[str, Any]
) -> None:
    from annotations.moderation import report_create

    note = make_note()
    report = report_create(reporter=people["sam"], reason="I disagree", note=note)
    url = reverse("annotations:report-dismiss", kwargs={"pk": report.pk})
    assert clients["sam"].post(url).status_code == 403
    assert clients["bruno"].post(url).status_code == 302
    report.refresh_from_db()
    note.refresh_from_db()
    assert report.status == "dismissed" and not note.hidden


def test_moderating_never_shows_a_curator_what_they_may_not_read(
    clients: dict[str, Client], make_note: Any, people: dict[str, Any]
) -> None:
    """An ETH curator cannot read an MIT-only note or a private draft by hiding it, nor see it
    (or a comment on it) in the queue."""
    from annotations.comments import comment_create
    from annotations.moderation import report_create

    draft = make_note(title="Alice's draft", visibility="private", publish=False)
    internal = make_note(title="MIT internal", visibility="institution")
    comment = comment_create(author=people["amir"], body="MIT-only remark", note=internal)
    report_create(reporter=people["amir"], reason="check this", note=internal)
    report_create(reporter=people["amir"], reason="and this", comment=comment)
    for kind, pk in (("note", draft.pk), ("note", internal.pk), ("comment", comment.pk)):
        hide = reverse("annotations:moderation-set-hidden", kwargs={"kind": kind, "pk": pk})
        assert clients["bruno"].post(hide, {"action": "hide"}).status_code == 404, (kind, pk)
    for note in (draft, internal):
        note.refresh_from_db()
        assert not note.hidden
        assert clients["bruno"].get(note.get_absolute_url()).status_code == 404
    queue = clients["bruno"].get(reverse("annotations:moderation")).content.decode()
    assert "MIT internal" not in queue and "MIT-only remark" not in queue


# --- the moderation services, called directly ----------------------------------------------


def test_a_report_is_about_one_visible_thing_and_its_reason_is_required(
    people: dict[str, Any], make_note: Any
) -> None:
    from django.contrib.auth.models import AnonymousUser

    from annotations.comments import comment_create
    from annotations.errors import AnnotationRefused, NotAllowed, NotVisible
    from annotations.models import Report
    from annotations.moderation import report_create

    note = make_note()
    comment = comment_create(author=people["amir"], body="Remark", note=note)
    report = report_create(reporter=people["bea"], reason=" Spam \u202e", note=note)
    assert (report.note, report.comment, report.reason, report.status) == (
        note,
        None,
        "Spam",
        "open",
    )
    with pytest.raises(NotAllowed):
        report_create(reporter=AnonymousUser(), reason="x", note=note)
    with pytest.raises(AnnotationRefused, match="one note or one comment"):
        report_create(reporter=people["bea"], reason="x", note=note, comment=comment)
    with pytest.raises(AnnotationRefused) as empty:
        report_create(reporter=people["bea"], reason=" ", comment=comment)
    assert empty.value.field == "reason"
    internal = make_note(visibility="institution")
    with pytest.raises(NotVisible):
        report_create(reporter=people["bea"], reason="x", note=internal)
    assert list(Report.objects.values_list("pk", flat=True)) == [report.pk]


def test_hiding_closes_the_reports_and_restoring_reopens_them(
    people: dict[str, Any], make_note: Any, inceptionv1: Any
) -> None:
    from annotations.errors import NotAllowed
    from annotations.models import Note, Report
    from annotations.moderation import moderation_set_hidden, report_create

    note = make_note()
    report_create(reporter=people["bea"], reason="spam", note=note)
    with pytest.raises(NotAllowed, match="only curators and staff"):
        moderation_set_hidden(moderator=people["bea"], hidden=True, note=note)
    version = inceptionv1.content_version
    moderation_set_hidden(moderator=people["bruno"], hidden=True, note=note)
    assert Note.objects.get(pk=note.pk).hidden
    report = Report.objects.get()
    assert (report.status, report.resolved_by) == ("hidden", people["bruno"])
    assert report.resolved is not None
    inceptionv1.refresh_from_db()
    assert inceptionv1.content_version > version
    moderation_set_hidden(moderator=people["bruno"], hidden=False, note=note)
    assert not Note.objects.get(pk=note.pk).hidden
    report = Report.objects.get()
    assert (report.status, report.resolved_by, report.resolved) == ("open", None, None)


def test_hiding_a_comment_on_a_unit_refreshes_that_unit(people: dict[str, Any], unit: Any) -> None:
    from annotations.comments import comment_create
    from annotations.errors import AnnotationRefused
    from annotations.models import Comment
    from annotations.moderation import moderation_set_hidden

    comment = comment_create(author=people["sam"], body="Buy cheap watches", unit=unit)
    unit.refresh_from_db()
    version = unit.discussion_version
    moderation_set_hidden(moderator=people["staff"], hidden=True, comment=comment)
    unit.refresh_from_db()
    assert Comment.objects.get().hidden and unit.discussion_version == version + 1
    with pytest.raises(AnnotationRefused, match="nothing to moderate"):
        moderation_set_hidden(moderator=people["staff"], hidden=True)


def test_dismissing_closes_a_report_for_its_moderators_only(
    people: dict[str, Any], make_note: Any
) -> None:
    from annotations.errors import NotAllowed, NotVisible
    from annotations.models import Report
    from annotations.moderation import report_create, report_dismiss

    report = report_create(reporter=people["amir"], reason="check", note=make_note())
    internal = report_create(
        reporter=people["amir"], reason="check", note=make_note(visibility="institution")
    )
    with pytest.raises(NotAllowed):
        report_dismiss(moderator=people["amir"], report=report)
    with pytest.raises(NotVisible):
        report_dismiss(moderator=people["bruno"], report=internal)  # an MIT-only note
    report_dismiss(moderator=people["bruno"], report=report)
    stored = Report.objects.get(pk=report.pk)
    assert (stored.status, stored.resolved_by) == ("dismissed", people["bruno"])
    assert stored.resolved is not None
    assert Report.objects.get(pk=internal.pk).status == "open"


def test_curators_label_units(people: dict[str, Any], unit: Any, inceptionv1: Any) -> None:
    from annotations.errors import NotAllowed
    from annotations.moderation import unit_label_set

    with pytest.raises(NotAllowed, match="label units"):
        unit_label_set(unit=unit, label="curves", user=people["alice"])
    version = inceptionv1.content_version
    unit_label_set(unit=unit, label=" Curve\u202e detector " + "x" * 300, user=people["bruno"])
    unit.refresh_from_db()
    inceptionv1.refresh_from_db()
    assert unit.curator_label == ("Curve detector " + "x" * 300)[:200]
    assert inceptionv1.content_version > version  # its pages show the label
