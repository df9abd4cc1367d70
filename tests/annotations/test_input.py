"""Bad input gets a clear 4xx and stores nothing; what is stored can never run as script."""

import re
from html.parser import HTMLParser
from typing import Any

import pytest
from django.template import Context, Template
from django.test import Client
from django.urls import reverse

from annotations.markdown import render_markdown

pytestmark = pytest.mark.django_db

XSS_PAYLOADS = [
    "<script>alert('xss')</script>",
    "<SCRIPT SRC=https://evil.example/x.js></SCRIPT>",
    '<img src=x onerror="alert(1)">',
    '![x](x" onerror="alert(1))',
    "[click](javascript:alert(1))",
    "[click](JaVaScRiPt:alert(document.cookie))",
    "[click](&#106;avascript:alert(1))",
    "[click](  javascript:alert(1))",
    '<a href="javascript:alert(1)">x</a>',
    "<svg onload=alert(1)>",
    "<svg><script>alert(1)</script></svg>",
    "[data](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)",
    "![img](data:image/svg+xml;base64,PHN2ZyBvbmxvYWQ9YWxlcnQoMSk+)",
    '<div style="background:url(javascript:alert(1))">x</div>',
    '<p style="width: expression(alert(1))">x</p>',
    "<iframe src=https://evil.example></iframe>",
    '<body onload="alert(1)">',
    "<math><mtext><table><mglyph><style><img src=x onerror=alert(1)>",
    "[x](vbscript:msgbox(1))",
    "<details open ontoggle=alert(1)>",
]
ALLOWED_SCHEMES = ("http:", "https:", "mailto:")
SCRIPTABLE_TAGS = {"script", "img", "svg", "iframe", "style", "body", "math", "object", "embed"}


class _Markup(HTMLParser):
    """Collects what a browser would act on: tags and attributes (not escaped text)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.problems: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in SCRIPTABLE_TAGS:
            self.problems.append(f"<{tag}>")
        for name, value in attrs:
            if name.startswith("on") or name == "style":
                self.problems.append(f"{tag} {name}")
            if name in ("href", "src", "action", "formaction") and value is not None:
                target = value.strip().lower()
                if ":" in target.split("/")[0] and not target.startswith(ALLOWED_SCHEMES):
                    self.problems.append(f"{tag} {name}={value}")


def _problems(html: str) -> list[str]:
    parser = _Markup()
    parser.feed(html)
    return parser.problems


def _clean(html: str) -> bool:
    return not _problems(html)


@pytest.mark.parametrize("payload", XSS_PAYLOADS)
def test_markdown_neutralizes_xss_payloads(payload: str) -> None:
    html = render_markdown(payload)
    assert _clean(html), html


def test_markdown_keeps_ordinary_formatting_and_safe_links() -> None:
    html = render_markdown("**bold** [paper](https://distill.pub/2020/circuits/) `code`")
    assert "<strong>bold</strong>" in html
    assert 'href="https://distill.pub/2020/circuits/"' in html
    assert 'rel="nofollow ugc noopener noreferrer"' in html
    assert "<code>code</code>" in html


def test_xss_in_notes_and_comments_never_reaches_a_page(
    clients: dict[str, Client], make_note: Any, people: dict[str, Any], unit: Any
) -> None:
    from annotations.comments import comment_create

    body = "\n\n".join(XSS_PAYLOADS)
    note = make_note(
        title="<script>alert('title')</script>",
        body=body,
        units="inceptionv1 4c:447, <img src=x onerror=alert(1)>",
        edges="",
    )
    comment_create(author=people["bea"], body=body, note=note)
    comment_create(author=people["bea"], body=body, unit=unit)
    pages = [
        note.get_absolute_url(),
        reverse("annotations:note-revision", kwargs={"pk": note.pk, "number": 1}),
        reverse("annotations:note-history", kwargs={"pk": note.pk}),
        reverse("annotations:unit-discussion", kwargs={"unit_id": unit.pk}),
        reverse("annotations:notes"),
        reverse("annotations:feed"),
    ]
    for url in pages:
        response = clients["anon"].get(url)
        assert response.status_code == 200, url
        assert _problems(_user_markup(response.content.decode())) == [], url
    panel = Template("{% load annotations_panel %}{% unit_annotations_panel unit %}")
    assert _problems(panel.render(Context({"unit": unit}))) == []


def _user_markup(html: str) -> str:
    """The page without the site's own scripts, styles and SVG (which no user writes)."""
    html = re.sub(r"<script (?:src|type)=[^>]*>.*?</script>", "", html, flags=re.S)
    html = re.sub(r"<link [^>]*>", "", html).replace("<body>", "", 1)
    html = re.sub(
        r"<svg class=\"(?:circuit|histogram|tuning)[^\"]*\".*?</svg>", "", html, flags=re.S
    )
    return re.sub(
        r"<img (?:class=\"(?:sprite|kernel)\" )?src=\"(?:/media/|data:image/png)[^>]*>", "", html
    )


def test_nonexistent_units_are_rejected_and_nothing_is_stored(
    clients: dict[str, Client], inceptionv1: Any
) -> None:
    from annotations.models import Note, NoteRevision

    url = reverse("annotations:note-create")
    for units in (
        "inceptionv1 4c:99999",
        "inceptionv1/nosuchlayer/1",
        "nosuchmodel/mixed4c/1",
        "inceptionv1@000000000000/mixed4c/447",
        "not a unit at all",
    ):
        data = {"title": "T", "body": "B", "units": units, "edges": "", "visibility": "public"}
        response = clients["alice"].post(url, data)
        assert response.status_code == 400, units
        assert "no unit" in response.content.decode()
    assert Note.objects.count() == 0 and NoteRevision.objects.count() == 0


@pytest.mark.parametrize(
    ("edges", "message"),
    [("1 -> 3", "there is no unit 3"), ("1 => 2", "write `1 -&gt; 2`"), ("1 -> 1", "joins two")],
)
def test_bad_edges_are_rejected(
    clients: dict[str, Client], inceptionv1: Any, edges: str, message: str
) -> None:
    from annotations.models import Note

    data = {
        "title": "T",
        "body": "B",
        "units": "inceptionv1 4c:447\ninceptionv1 4c:448",
        "edges": edges,
        "visibility": "public",
    }
    response = clients["alice"].post(reverse("annotations:note-create"), data)
    assert response.status_code == 400
    assert message in response.content.decode()
    assert Note.objects.count() == 0


def test_over_long_bodies_are_rejected(
    clients: dict[str, Client], make_note: Any, unit: Any
) -> None:
    from annotations.models import NOTE_BODY_MAX, Comment, Note

    data = {
        "title": "T",
        "body": "x" * (NOTE_BODY_MAX + 1),
        "units": "",
        "edges": "",
        "visibility": "public",
    }
    assert clients["alice"].post(reverse("annotations:note-create"), data).status_code == 400
    assert Note.objects.count() == 0
    discussion = reverse("annotations:unit-discussion", kwargs={"unit_id": unit.pk})
    assert clients["alice"].post(discussion, {"body": "y" * 5001}).status_code == 400
    assert clients["alice"].post(discussion, {"body": "   "}).status_code == 400
    assert Comment.objects.count() == 0


def test_posting_is_rate_limited_per_user(
    clients: dict[str, Client], unit: Any, settings: Any
) -> None:
    from annotations.models import Comment

    settings.ANNOTATIONS_POSTS_PER_MINUTE = 3
    url = reverse("annotations:unit-discussion", kwargs={"unit_id": unit.pk})
    codes = [clients["alice"].post(url, {"body": f"comment {i}"}).status_code for i in range(4)]
    assert codes == [302, 302, 302, 429]
    limited = clients["alice"].post(url, {"body": "again"})
    assert limited.status_code == 429 and limited["Retry-After"] == "60"
    assert Comment.objects.filter(author__username="alice").count() == 3
    # The limit is per user: bea may still post.
    assert clients["bea"].post(url, {"body": "mine"}).status_code == 302


def test_csrf_is_enforced_on_every_form(people: dict[str, Any], unit: Any, make_note: Any) -> None:
    from annotations.models import Comment, Report

    note = make_note()
    client = Client(enforce_csrf_checks=True)
    client.force_login(people["bea"])
    posts = [
        (reverse("annotations:unit-discussion", kwargs={"unit_id": unit.pk}), {"body": "x"}),
        (reverse("annotations:note-comment", kwargs={"pk": note.pk}), {"body": "x"}),
        (reverse("annotations:note-report", kwargs={"pk": note.pk}), {"reason": "x"}),
        (reverse("annotations:note-create"), {"title": "t", "body": "b", "visibility": "public"}),
    ]
    for url, data in posts:
        assert client.post(url, data).status_code == 403, url
    assert Comment.objects.count() == 0 and Report.objects.count() == 0
