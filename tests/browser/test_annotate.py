"""A real browser (Debian's Chromium driven by Playwright) annotates a unit across institutions:
an author writes and publishes a circuit note and comments, a researcher elsewhere replies and
reports the comment, a curator hides it, and an anonymous reader no longer sees it."""

import re
from pathlib import Path
from typing import Any

import pytest

from annotations.models import Comment, Institution, Membership, Note, Report
from annotations.people import user_signup
from neurons.services import model_import
from rendering.engine.zoo import WeightsSpec
from rendering.services import render_job_run, render_jobs_create

PASSWORD = "pw-12345!"
pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


def _visitor(browser: Any) -> Any:
    """A page in a browser context of its own: its own cookies, so its own session."""
    context = browser.new_context(viewport={"width": 1200, "height": 900})
    context.set_default_timeout(15_000)
    return context.new_page()


def _log_in(page: Any, base: str, username: str) -> None:
    page.goto(base + "/accounts/login/")
    page.get_by_label("Username", exact=True).fill(username)
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url("**/notes/")
    assert page.get_by_role("link", name=username, exact=True).is_visible()


def test_researchers_annotate_a_unit_and_a_curator_hides_a_reported_comment(
    live_server: Any,
    browser: Any,
    small_renders: dict[str, Any],
    fast_passwords: None,
    tmp_path: Path,
) -> None:
    model = model_import(registry_key="inceptionv1", weights=WeightsSpec("random", seed=0))
    mixed4c = model.layers.get(name="mixed4c")
    (job,) = render_jobs_create(
        layer=mixed4c, technique="channel", units=[447, 448], params=small_renders, enqueue=False
    )
    render_job_run(job_id=job.pk)
    Institution.objects.create(name="MIT", slug="mit", email_domains="mit.edu")
    Institution.objects.create(name="ETH Zürich", slug="eth", email_domains="ethz.ch")
    user_signup(
        username="alice",
        email="alice@mit.edu",
        password=PASSWORD,
        display_name="Alice",
        email_verified=True,
    )
    user_signup(
        username="bea",
        email="bea@ethz.ch",
        password=PASSWORD,
        display_name="Bea",
        email_verified=True,
    )
    bruno = user_signup(
        username="bruno", email="bruno@ethz.ch", password=PASSWORD, email_verified=True
    )
    Membership.objects.filter(user=bruno).update(role=Membership.Role.CURATOR)
    base = live_server.url
    shots = tmp_path / "screenshots"
    shots.mkdir()

    # alice (MIT) logs in and writes a published note about two units joined by an edge.
    alice = _visitor(browser)
    _log_in(alice, base, "alice")
    alice.goto(base + "/notes/new/")
    alice.get_by_label("Title", exact=True).fill("Curve detectors feed the next curve detector")
    alice.get_by_label("Body", exact=True).fill(
        "Unit **447** excites unit 448 at the same orientation."
    )
    alice.get_by_label("Units", exact=True).fill(
        "inceptionv1 4c:447, input\ninceptionv1 4c:448, output"
    )
    alice.get_by_label("Edges", exact=True).fill("1 -> 2 0.5")
    alice.get_by_label("Visibility", exact=True).select_option("public")
    alice.get_by_role("button", name="Save and publish").click()
    alice.wait_for_url(re.compile(r".*/notes/\d+/$"))
    note = Note.objects.get()
    assert note.published is not None and note.edges.count() == 1
    assert alice.get_by_role("heading", name=note.title).is_visible()
    assert alice.get_by_text("mixed4c:447 excites mixed4c:448 (strength 0.500)").is_visible()

    # Its circuit: both units, with their thumbnails, and one red (excitatory) edge.
    circuit = alice.locator("svg.circuit")
    assert circuit.is_visible()
    assert circuit.locator("a.node").count() == 2
    assert circuit.locator("a.node image").count() == 2
    edge = circuit.locator("g.edge.excitatory")
    assert edge.count() == 1 and edge.locator("line").get_attribute("marker-end") == "url(#arrow)"
    alice.screenshot(path=shots / "note.png", full_page=True)

    # The diagram links to the unit page, whose panel lists the note.
    circuit.locator("a.node").first.click()
    alice.wait_for_url(f"**/models/inceptionv1@{model.version}/mixed4c/447/")
    panel = alice.locator("section.annotations")
    assert panel.get_by_role("link", name=note.title).is_visible()
    alice.screenshot(path=shots / "unit.png", full_page=True)

    # alice comments on the unit's discussion page.
    panel.get_by_role("link", name="Comment", exact=True).click()
    alice.wait_for_url("**/units/*/discussion/")
    alice.get_by_label("Comment", exact=True).fill("Does 447 also respond to *spirals*?")
    alice.get_by_role("button", name="Comment").click()
    alice.wait_for_url(re.compile(r".*/discussion/#comment-\d+$"))
    comment = Comment.objects.get()
    assert alice.locator(f"#comment-{comment.pk}").get_by_text("also respond to").is_visible()

    # An anonymous reader sees the comment on the (page-cached) unit page.
    reader = _visitor(browser)
    unit_url = f"{base}/models/inceptionv1/mixed4c/447/"
    seen = reader.goto(unit_url)
    assert seen is not None and seen.headers.get("x-page-cache") == "miss"  # now cached
    assert reader.locator(f"#comment-{comment.pk}").get_by_text("also respond to").is_visible()

    # bea (ETH) replies to it, then reports it.
    bea = _visitor(browser)
    _log_in(bea, base, "bea")
    bea.goto(base + f"/units/{comment.unit_id}/discussion/")
    thread = bea.locator(f"#comment-{comment.pk}")
    byline = thread.locator("p.byline")
    assert byline.get_by_role("link", name="Alice").is_visible()
    assert byline.get_by_role("link", name="MIT").is_visible()  # the author's institution
    thread.get_by_role("link", name="reply").click()
    bea.wait_for_url(f"**/comments/{comment.pk}/reply/")
    bea.get_by_label("Comment", exact=True).fill("Only weakly, in our runs at ETH.")
    bea.get_by_role("button", name="Post").click()
    bea.wait_for_url(re.compile(r".*/discussion/#comment-\d+$"))
    reply = Comment.objects.get(parent=comment)
    assert bea.locator(f"#comment-{reply.pk}").get_by_text("Only weakly").is_visible()
    assert "depth-1" in (bea.locator(f"#comment-{reply.pk}").get_attribute("class") or "")
    bea.screenshot(path=shots / "discussion.png", full_page=True)
    bea.locator(f"#comment-{comment.pk}").get_by_role("link", name="report").click()
    bea.wait_for_url(f"**/comments/{comment.pk}/report/")
    bea.get_by_label("Reason", exact=True).fill("Off topic for this unit.")
    bea.get_by_role("button", name="Report").click()
    assert bea.get_by_role("heading", name="Thank you").is_visible()
    assert Report.objects.get().status == Report.Status.OPEN
    bea.screenshot(path=shots / "reported.png")

    # bruno, an ETH curator, hides it from the moderation queue.
    curator = _visitor(browser)
    _log_in(curator, base, "bruno")
    curator.get_by_role("link", name="Moderation").click()
    curator.wait_for_url("**/moderation/")
    row = curator.locator("tr", has_text="Off topic for this unit.")
    assert row.get_by_text("also respond to").is_visible()
    curator.screenshot(path=shots / "queue.png", full_page=True)
    row.get_by_role("button", name="Hide").click()
    curator.wait_for_url("**/moderation/")
    assert curator.get_by_text("Nothing here.").is_visible()
    comment.refresh_from_db()
    assert comment.hidden and Report.objects.get().status == Report.Status.HIDDEN

    # The anonymous reader no longer sees the comment; bea's reply stays in the thread.
    seen = reader.goto(unit_url)
    assert seen is not None and seen.headers.get("x-page-cache") == "miss"  # a new version
    for url in (unit_url, f"{base}/units/{comment.unit_id}/discussion/"):
        reader.goto(url)
        removed = reader.locator(f"#comment-{comment.pk}")
        assert removed.get_by_text("comment hidden by moderators").is_visible(), url
        assert "also respond to" not in reader.content(), url
        assert reader.locator(f"#comment-{reply.pk}").get_by_text("Only weakly").is_visible()
    reader.screenshot(path=shots / "hidden.png", full_page=True)
    assert len(list(shots.glob("*.png"))) == 6
