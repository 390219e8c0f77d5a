"""The page in a real browser: Debian's chromium, headless, driven by Playwright.

It uploads a real photo in tab 1 and reads the breed the page shows, then a bad file and reads the
message. Skipped (with the reason) where /usr/bin/chromium is missing, except in CI
(``REQUIRE_PETS_SAMPLE=1``), which installs it: there a missing browser is a failure.
Never ``playwright install``: it would download a browser.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.support.server import DemoServer

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--no-sandbox", "--disable-background-networking", "--disable-gpu", "--no-first-run",
        "--disable-component-update", "--disable-sync"]

if not CHROMIUM.exists() and os.environ.get("REQUIRE_PETS_SAMPLE") != "1":
    pytest.skip(f"{CHROMIUM} is not installed (apt-get install chromium); CI installs it and runs these tests",
                allow_module_level=True)


@pytest.fixture(scope="module")
def page():
    if not CHROMIUM.exists():
        pytest.fail(f"REQUIRE_PETS_SAMPLE=1 but {CHROMIUM} is missing: install Debian's chromium (apt-get install "
                    "chromium); .ci/run does it")
    from playwright.sync_api import sync_playwright

    with DemoServer() as server, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=ARGS)
        page = browser.new_page()
        page.set_default_timeout(60_000)
        outside = []
        page.on("request", lambda r: outside.append(r.url) if not r.url.startswith(server.url) else None)
        page.goto(server.url)
        page.wait_for_selector("#photo-upload input[type=file]", state="attached")
        yield page
        browser.close()
        assert outside == [], f"the page fetched from outside the server: {outside}"  # it must work offline


def _upload(page, path):
    clear = page.locator("#photo-upload button[aria-label='Clear']")
    if clear.count():  # a file is shown: clear it first, as a visitor would
        clear.first.click()
        page.wait_for_function("document.querySelector('#verdict').innerText.startsWith('No photo yet')")
    page.locator("#photo-upload input[type=file]").set_input_files(str(path))


def test_upload_a_real_photo_and_read_the_breed(page, pets_sample):
    _upload(page, pets_sample / "images" / "keeshond_119.jpg")
    page.wait_for_function("document.querySelector('#verdict').innerText.includes('ms with the shipped model')")
    assert page.locator("#verdict h3").inner_text() == "keeshond"
    assert "A dog" in page.locator("#verdict").inner_text()
    assert "keeshond" in page.locator("#top5").inner_text()


def test_the_map_of_where_the_model_looked_can_be_switched_off(page, pets_sample):
    _upload(page, pets_sample / "images" / "pug_16.jpg")
    page.wait_for_function("document.querySelector('#verdict').innerText.includes('ms with the shipped model')")
    box = page.locator("#show-map input[type=checkbox]")
    assert box.is_checked()  # on by default: the square with the map over it, not the plain one
    page.locator("#looked img").wait_for(state="visible")
    assert not page.locator("#seen img").is_visible()
    box.uncheck()
    page.locator("#seen img").wait_for(state="visible")
    assert not page.locator("#looked").is_visible()
    box.check()
    page.locator("#looked img").wait_for(state="visible")


def test_upload_a_bad_file_and_read_the_message(page, tmp_path):
    (tmp_path / "holiday.jpg").write_text("this text file pretends to be a JPEG")
    _upload(page, tmp_path / "holiday.jpg")
    page.wait_for_function("document.querySelector('#verdict').innerText.includes('Cannot use this file')")
    text = page.locator("#verdict").inner_text()
    assert "not an image the demo can read" in text and "Error" not in text
    # the page keeps working: a plain generated picture gets an answer (not a cat or dog)
    from engine.testing import write_image

    _upload(page, write_image(tmp_path / "stripes.jpg", "rgb", size=(320, 240)))
    page.wait_for_function("document.querySelector('#verdict').innerText.includes('does not look like a cat')")
