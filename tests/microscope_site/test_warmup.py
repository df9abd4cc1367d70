"""A web process compiles the site's templates before it serves, touching no database."""

import gc
import logging
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings

from microscope_site.warmup import templates_compile, warm_up


@pytest.fixture(autouse=True)
def _unfrozen() -> Any:
    """`warm_up` freezes the objects it finds; the test process gets them back afterwards."""
    yield
    gc.unfreeze()


def test_every_template_of_the_site_compiles_without_the_database() -> None:
    # No django_db mark: a query here would fail the test (gunicorn may warm up before forking).
    folder = Path(settings.TEMPLATES[0]["DIRS"][0])
    assert templates_compile() == len(list(folder.rglob("*.html"))) > 40
    warm_up()


def test_the_warm_up_leaves_what_it_built_out_of_full_collections() -> None:
    gc.unfreeze()
    warm_up()
    frozen = gc.get_freeze_count()
    assert frozen > 100_000  # Django, the apps, the compiled templates
    assert len(gc.get_objects(generation=2)) < frozen  # what full collections still walk


def test_a_template_that_does_not_compile_is_logged_and_the_rest_still_compile(
    settings: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "good.html").write_text("{% if x %}fine{% endif %}")
    (tmp_path / "bad.html").write_text("{% if x %}never closed")
    settings.TEMPLATES = [{**settings.TEMPLATES[0], "DIRS": [tmp_path]}]
    with caplog.at_level(logging.ERROR, logger="microscope_site.warmup"):
        assert templates_compile() == 1
    assert "bad.html does not compile" in caplog.text
