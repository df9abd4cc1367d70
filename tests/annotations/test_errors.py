from django.http import Http404

from annotations.errors import AnnotationRefused, NotAllowed, NotVisible, PostingTooFast


def test_each_refusal_carries_its_status_and_field() -> None:
    refused = AnnotationRefused("bad units", field="units")
    assert (refused.status, refused.field, str(refused)) == (400, "units", "bad units")
    assert NotAllowed("no").status == 403 and NotAllowed("no").field is None
    assert PostingTooFast(retry_after=30).status == 429
    assert str(PostingTooFast(retry_after=30)) == "you are posting too fast; try again in 30 s"


def test_what_may_not_be_read_answers_not_found_even_uncaught() -> None:
    hidden = NotVisible("no such note")
    assert hidden.status == 404
    assert isinstance(hidden, Http404) and isinstance(hidden, AnnotationRefused)
