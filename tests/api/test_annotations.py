from typing import Any

import pytest

from annotations.models import Comment, Note, Report

pytestmark = pytest.mark.django_db


def _ids(response: Any) -> set[int]:
    assert response.status_code == 200, response.content
    return {row["id"] for row in response.json()["results"]}


def test_notes_follow_the_pages_visibility_rules(api: Any, make_note: Any) -> None:
    public = make_note(visibility="public")
    mit_only = make_note(visibility="institution")
    private = make_note(visibility="private")
    draft = make_note(visibility="public", publish=False)
    assert _ids(api["anon"].get("/api/v1/notes/")) == {public.pk}
    assert _ids(api["amir"].get("/api/v1/notes/")) == {public.pk, mit_only.pk}  # same institution
    assert _ids(api["bea"].get("/api/v1/notes/")) == {public.pk}  # other institution
    assert _ids(api["alice"].get("/api/v1/notes/")) == {
        public.pk,
        mit_only.pk,
        private.pk,
        draft.pk,
    }
    for who, note, code in [
        ("anon", mit_only, 404),
        ("bea", mit_only, 404),
        ("amir", mit_only, 200),
        ("amir", private, 404),
        ("amir", draft, 404),
        ("alice", draft, 200),
    ]:
        assert api[who].get(f"/api/v1/notes/{note.pk}/").status_code == code, (who, note.title)


def test_hidden_notes_are_seen_by_their_author_and_moderators_only(
    api: Any, make_note: Any
) -> None:
    note = make_note(visibility="public")
    Note.objects.filter(pk=note.pk).update(hidden=True)
    assert api["anon"].get(f"/api/v1/notes/{note.pk}/").status_code == 404
    assert api["sam"].get(f"/api/v1/notes/{note.pk}/").status_code == 404
    assert api["alice"].get(f"/api/v1/notes/{note.pk}/").status_code == 200
    assert api["bruno"].get(f"/api/v1/notes/{note.pk}/").status_code == 200


def test_a_note_lists_its_units_and_edges(api: Any, make_note: Any, unit: Any) -> None:
    note = make_note()
    data = api["anon"].get(f"/api/v1/notes/{note.pk}/").json()
    assert [u["unit"] for u in data["units"]] == [unit.pk, unit.pk + 1]
    assert data["units"][0]["role"] == "input"
    assert data["edges"] == [
        {"source": unit.pk, "target": unit.pk + 1, "kind": "excitatory", "strength": None}
    ]
    assert data["author"]["username"] == "alice" and data["institution"] == "mit"
    assert "<strong>4c</strong>" in data["body_html"]
    assert _ids(api["anon"].get("/api/v1/notes/", {"unit": unit.pk})) == {note.pk}


def test_posting_a_note_goes_through_the_service_rules(token_client: Any, api: Any) -> None:
    client = token_client("alice")
    body = {
        "title": "A circuit",
        "body": "Hello <script>alert(1)</script> **world**",
        "units": ["inceptionv1 4c:447, hub", "inceptionv1/mixed4c/448"],
        "edges": ["1 -| 2 0.5"],
        "visibility": "public",
        "publish": True,
    }
    response = client.post("/api/v1/notes/", body)
    assert response.status_code == 201, response.content
    note = Note.objects.get()
    assert response["Location"] == f"http://testserver/api/v1/notes/{note.pk}/"
    assert note.is_public and note.revisions.count() == 1
    assert "<script>" not in note.body_html and "<strong>world</strong>" in note.body_html
    assert note.edges.get().kind == "inhibitory"
    bad = client.post("/api/v1/notes/", {**body, "units": ["inceptionv1/mixed4c/9999"]})
    assert bad.status_code == 400
    assert "units" in bad.json()["error"]["detail"]
    assert api["anon"].post("/api/v1/notes/", body).status_code == 401


def test_only_the_author_edits_and_publishes_a_note(api: Any, make_note: Any) -> None:
    note = make_note(visibility="public", publish=False)
    assert api["amir"].patch(f"/api/v1/notes/{note.pk}/", {"title": "x"}).status_code == 404
    public = make_note(visibility="public")
    refused = api["amir"].patch(f"/api/v1/notes/{public.pk}/", {"title": "Mine now"})
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "permission_denied"
    edited = api["alice"].patch(f"/api/v1/notes/{note.pk}/", {"title": "Better title"})
    assert edited.status_code == 200 and edited.json()["title"] == "Better title"
    assert len(edited.json()["units"]) == 2  # fields left out keep their values
    assert Note.objects.get(pk=note.pk).revisions.count() == 2
    published = api["alice"].post(f"/api/v1/notes/{note.pk}/publish/")
    assert published.status_code == 200 and published.json()["published"] is not None


def test_comments_on_notes_one_cannot_see_stay_hidden(
    api: Any, people: Any, make_note: Any, unit: Any
) -> None:
    from annotations.comments import comment_create

    private = make_note(visibility="institution")
    on_note = comment_create(author=people["amir"], body="hi", note=private)
    on_unit = comment_create(author=people["bea"], body="nice", unit=unit)
    assert _ids(api["anon"].get("/api/v1/comments/")) == {on_unit.pk}
    assert _ids(api["bea"].get("/api/v1/comments/")) == {on_unit.pk}
    assert _ids(api["alice"].get("/api/v1/comments/")) == {on_unit.pk, on_note.pk}
    assert api["bea"].get(f"/api/v1/comments/{on_note.pk}/").status_code == 404
    assert (
        api["bea"].post("/api/v1/comments/", {"note": private.pk, "body": "x"}).status_code == 404
    )
    reply = api["bea"].post("/api/v1/comments/", {"parent": on_note.pk, "body": "x"})
    assert reply.status_code == 404


def test_comment_create_edit_delete(api: Any, unit: Any) -> None:
    created = api["bea"].post("/api/v1/comments/", {"unit": unit.pk, "body": "A *curve*"})
    assert created.status_code == 201, created.content
    pk = created.json()["id"]
    assert created.json()["body_html"] == "<p>A <em>curve</em></p>\n"
    reply = api["alice"].post("/api/v1/comments/", {"parent": pk, "body": "agreed"})
    assert reply.status_code == 201 and reply.json()["unit"] == unit.pk
    assert api["alice"].patch(f"/api/v1/comments/{pk}/", {"body": "no"}).status_code == 403
    assert api["bea"].patch(f"/api/v1/comments/{pk}/", {"body": "A curve!"}).status_code == 200
    assert api["alice"].delete(f"/api/v1/comments/{pk}/").status_code == 403
    assert api["bea"].delete(f"/api/v1/comments/{pk}/").status_code == 204
    assert Comment.objects.get(pk=pk).deleted is not None
    gone = api["sam"].get(f"/api/v1/comments/{pk}/").json()
    assert gone["state"] == "deleted" and gone["body"] is None
    assert api["bea"].get(f"/api/v1/comments/{pk}/").json()["body"] == "A curve!"
    both = api["anon"].post("/api/v1/comments/", {"unit": unit.pk, "note": 1, "body": "x"})
    assert both.status_code == 401
    both = api["sam"].post("/api/v1/comments/", {"unit": unit.pk, "note": 1, "body": "x"})
    assert both.status_code == 400


def test_reports_reach_the_moderators(api: Any, make_note: Any) -> None:
    note = make_note(visibility="public")
    hidden = make_note(visibility="private")
    response = api["sam"].post("/api/v1/reports/", {"note": note.pk, "reason": "spam"})
    assert response.status_code == 201 and response.json()["status"] == "open"
    assert Report.objects.get().note_id == note.pk
    assert (
        api["sam"].post("/api/v1/reports/", {"note": hidden.pk, "reason": "x"}).status_code == 404
    )
    assert api["anon"].post("/api/v1/reports/", {"note": note.pk, "reason": "x"}).status_code == 401


def test_curator_labels_are_for_curators_and_staff(api: Any, token_client: Any, unit: Any) -> None:
    url = f"/api/v1/units/{unit.pk}/label/"
    assert api["anon"].put(url, {"curator_label": "x"}).status_code == 401
    assert api["alice"].put(url, {"curator_label": "x"}).status_code == 403
    response = api["bruno"].put(url, {"curator_label": " curve detector "})
    assert response.status_code == 200 and response.json()["curator_label"] == "curve detector"
    assert token_client("staff").put(url, {"curator_label": "curve"}).status_code == 200
    assert token_client("staff", scope="read").put(url, {"curator_label": "y"}).status_code == 403
    unit.refresh_from_db()
    assert unit.curator_label == "curve"


def test_institutions_are_listed(api: Any) -> None:
    rows = api["anon"].get("/api/v1/institutions/").json()["results"]
    assert {r["slug"] for r in rows} == {"mit", "eth"}
    assert api["anon"].get("/api/v1/institutions/eth/").json()["domains"] == ["ethz.ch"]
