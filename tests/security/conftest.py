from typing import Any

import pytest
from django.test import Client

# What attackers type into paths, parameters and forms: traversal (plain, encoded, doubled,
# Windows), NUL bytes, markup, SQL, numbers past every integer type, odd Unicode.
NASTY = [
    "..",
    "../..",
    "../../../../etc/passwd",
    "..%2f..%2f..%2fetc%2fpasswd",
    "%2e%2e/%2e%2e/etc/passwd",
    "%252e%252e%252f",
    "....//....//etc/passwd",
    "..\\..\\windows\\win.ini",
    "/etc/passwd",
    "%00",
    "a%00.png",
    "\x00",
    "%",
    "%zz",
    "-1",
    "-99999999999999999999",
    "99999999999999999999999999",
    "9223372036854775808",
    "0",
    "1e309",
    "NaN",
    "null",
    "true",
    "inceptionv1@",
    "inceptionv1@zzzz",
    "inceptionv1@" + "f" * 16,
    "@",
    "x" * 3000,
    "<script>alert(1)</script>",
    "\"'><img src=x onerror=alert(1)>",
    "' OR '1'='1",
    "1; DROP TABLE neurons_unit; --",
    "%' UNION SELECT password FROM auth_user --",
    "ünïcødé",
    "\u202egnp.exe",
    "😀",
    "\ufeff",
    " ",
    "//evil.example",
    "https://evil.example/",
    "javascript:alert(1)",
]


@pytest.fixture
def login(people: dict[str, Any]) -> Any:
    """A fresh client signed in as `name` (or anonymous for "anon")."""

    def make(name: str, **options: Any) -> Client:
        client = Client(**options)
        if name != "anon":
            client.force_login(people[name])
        return client

    return make


@pytest.fixture
def world(
    people: dict[str, Any], make_note: Any, unit: Any, inceptionv1: Any, media: Any, settings: Any
) -> dict[str, list[str]]:
    """Rows for the fuzzer to reach, by the group names the URL patterns use."""
    from annotations.comments import comment_create
    from annotations.models import Report
    from neurons.models import ImportJob

    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {k: "100000/minute" for k in ("anon", "user", "token")},
    }
    media.mkdir(parents=True, exist_ok=True)
    (media / "renders").mkdir()
    (media / "renders" / "ok.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    note = make_note()
    private = make_note(author="bea", visibility="private", title="Private")
    comment = comment_create(author=people["bea"], body="A comment", note=note)
    report = Report.objects.create(note=note, reporter=people["sam"], reason="spam")
    job = ImportJob.objects.create(registry_key="alexnet", weights_source="random")
    ids = [note.pk, private.pk, comment.pk, report.pk, job.pk, unit.pk, unit.layer_id]
    return {
        "model": ["inceptionv1", str(inceptionv1)],
        "ref": ["inceptionv1", str(inceptionv1)],
        "layer": ["mixed4c", "conv2d0", "softmax2"],
        "index": ["447", "0", "507", "508"],
        "shorthand": ["4c:447", "mixed4c:447", "4c:99999"],
        "pk": [str(i) for i in ids],
        "id": [str(i) for i in ids],
        "object_id": [str(i) for i in ids],
        "unit_id": [str(unit.pk)],
        "number": ["1", "2"],
        "username": ["alice", "bea", "staff"],
        "slug": ["mit", "eth", "channel", "pets"],
        "kind": ["note", "comment"],
        "section": ["models", "notes"],  # (the units section lists 5,804 URLs: slow)
        "app_label": ["neurons", "annotations"],
        "content_type_id": ["1", "7"],
        "path": ["renders/ok.png", "renders/", ""],
        "format": ["json", "api", "html"],
    }
