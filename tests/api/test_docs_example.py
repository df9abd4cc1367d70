"""The Python example in docs/API.md runs against the API (requests replaced by the test client).
The same example against a live `runserver`, with `requests` itself: tests/api/test_live_api.py."""

import re
import sys
import types
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from rest_framework.test import APIClient

pytestmark = pytest.mark.django_db

DOC = Path(__file__).resolve().parents[2] / "docs" / "API.md"


class _Response:
    def __init__(self, response: Any) -> None:
        self._response = response

    def json(self) -> Any:
        return self._response.json()

    def raise_for_status(self) -> None:
        assert self._response.status_code < 400, self._response.content


class _Session:
    """The few parts of requests.Session the example uses, over Django's test client."""

    def __init__(self) -> None:
        self.headers: dict[str, str] = {}
        self.client = APIClient()

    def _path(self, url: str) -> str:
        parts = urlsplit(url)
        return parts.path + (f"?{parts.query}" if parts.query else "")

    def get(self, url: str, params: dict[str, Any] | None = None) -> _Response:
        auth = self.headers.get("Authorization", "")
        return _Response(self.client.get(self._path(url), params, HTTP_AUTHORIZATION=auth))

    def post(self, url: str, json: Any, headers: dict[str, str] | None = None) -> _Response:
        extra = {
            f"HTTP_{k.upper().replace('-', '_')}": v
            for k, v in {**self.headers, **(headers or {})}.items()
        }
        response = self.client.post(self._path(url), json, format="json", **extra)
        return _Response(response)


def test_the_docs_example_walks_a_circuit_and_posts_a_note(
    people: Any, inceptionv1: Any, unit: Any, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    from annotations.models import Note
    from annotations.tokens import token_create
    from tests.api.circuit import docs_example_circuit

    source = docs_example_circuit(model=inceptionv1, unit=unit, author=people["bea"])
    _, secret = token_create(user=people["alice"], name="docs", scope="write")

    code = re.search(r"```python\n(.*?)```", DOC.read_text(), re.S)
    assert code is not None
    source_code = code.group(1).replace('"msc_…"', repr(secret))
    monkeypatch.setitem(sys.modules, "requests", types.SimpleNamespace(Session=_Session))
    exec(compile(source_code, str(DOC), "exec"), {})

    printed = capsys.readouterr().out
    assert "mixed4b:9  strength +0.700" in printed
    assert "render http://testserver/media/r/9.png 512 steps" in printed
    assert "note Dog heads" in printed
    posted = Note.objects.get(author=people["alice"])
    assert posted.is_public and posted.edges.get().kind == "excitatory"
    assert [nu.unit_id for nu in posted.note_units.all()] == [unit.pk, source.pk]
