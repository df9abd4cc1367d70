"""The browser the page tests drive: Debian's Chromium through Playwright (never a downloaded
browser). The browser tests are part of the suite: without Chromium they fail and say so."""

import os
import shutil
from collections.abc import Iterator
from typing import Any

import pytest

from tests.servers import CHROMIUM


@pytest.fixture
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    if shutil.which(CHROMIUM) is None:
        pytest.fail(
            f"no browser at {CHROMIUM}: the browser tests need Debian's chromium "
            "(apt-get install chromium; `make test` installs it when run as root)",
            pytrace=False,
        )
    os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")  # Playwright runs an event loop
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        try:
            yield browser
        finally:
            browser.close()
