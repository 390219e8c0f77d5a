"""The two labs and the "Use via API" page in a real browser (Debian's chromium, headless, through
the real server).

The presizing lab once lost its photo: click an example, move a slider, press Compare, and the
page said "Cannot use this file ... take one with the webcam" (that tab has no webcam) and wiped
the results. Its controls now update the page live, as the softmax lab's do, and a number typed
past a softmax slider's end is taken as that end, with a note, instead of blanking the chart.
The API page's Python snippet sends a shipped example photo, not a PDF from a public URL.
Skipped like ``test_demo_browser.py`` where chromium is missing (never ``playwright install``).
"""

from __future__ import annotations

import pytest

from tests.support.server import DemoServer
from tests.test_demo_browser import ARGS, CHROMIUM  # its module-level skip applies here too

REPORT = "document.querySelector('#presize-report').innerText"


@pytest.fixture(scope="module")
def page(pets_sample):
    from playwright.sync_api import sync_playwright

    with DemoServer() as server, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=ARGS)
        page = browser.new_page(viewport={"width": 1366, "height": 900})
        page.set_default_timeout(60_000)
        page.goto(server.url)
        page.wait_for_selector("#photo-upload", state="attached")
        page.server = server
        yield page
        browser.close()


def _set(page, selector: str, value: str) -> None:
    """Type ``value`` into a slider's number box and leave it, as a visitor does."""
    box = page.locator(f"{selector} input[type=number]")
    box.fill(value)
    box.press("Tab")


def _report_says(page, text: str) -> None:
    page.wait_for_function(f"{REPORT}.includes({text!r})")


def test_an_example_stays_the_photo_when_a_slider_moves_and_compare_is_pressed(page):
    page.get_by_role("tab", name="Presizing lab").click()
    page.locator("#presize-examples .thumbnail-item").first.click()
    _report_says(page, "rotate by 10 degrees")
    assert "Abyssinian" in page.locator("#presize-upload").inner_text()  # the example is the tab's photo now
    _set(page, "#presize-rotate", "30")  # live: no button pressed
    _report_says(page, "rotate by 30 degrees")
    page.locator("#presize-compare").click()  # the failure: the example was gone, the webcam advised
    page.wait_for_timeout(1500)
    report = page.evaluate(REPORT)
    assert "rotate by 30 degrees" in report and "PSNR" in report and "Cannot use" not in report, report
    assert "webcam" not in page.locator("#presize-report").inner_text()
    assert page.locator("#presize-naive img").count() == page.locator("#presize-presized img").count() == 1


def test_an_uploaded_photo_replaces_the_example(page, pets_sample):
    page.get_by_role("tab", name="Presizing lab").click()
    before = page.evaluate(REPORT)  # the example's measurements, from the test above
    page.locator("#presize-upload button[aria-label='Clear']").first.click()
    page.locator("#presize-upload input[type=file]").set_input_files(str(pets_sample / "images" / "keeshond_119.jpg"))
    page.wait_for_function("document.querySelector('#presize-upload').innerText.includes('keeshond_119')")
    page.wait_for_function(f"{REPORT} !== {before!r} && {REPORT}.includes('PSNR')")  # measured on the upload
    _set(page, "#presize-rotate", "20")
    _report_says(page, "rotate by 20 degrees")
    assert page.locator("#presize-naive img").count() == 1


def test_the_zoom_slider_updates_the_comparison_live(page):
    page.get_by_role("tab", name="Presizing lab").click()
    _set(page, "#presize-zoom", "1.5")
    _report_says(page, "zoom by 1.5")
    assert "Something went wrong" not in page.evaluate(REPORT)


def test_a_typed_activation_past_the_end_is_clamped_with_a_message(page):
    page.get_by_role("tab", name="Softmax & cross-entropy lab").click()
    box = page.locator("input[type=number][aria-label='number input for activation: pug']")
    box.fill("50")
    box.press("Tab")
    page.wait_for_function("document.body.innerText.includes('50 was taken as 10')")
    assert box.input_value() == "10"  # the box moved it too, and sent 10 again
    page.wait_for_timeout(1500)
    text = page.locator("body").inner_text()  # the note is still there after that echo
    assert "The activation of pug must be between -10 and 10: 50 was taken as 10." in text
    assert "cross-entropy" in text  # the explanation is still there, for the clamped value
    assert page.locator(".matplotlib img").count() == 1  # the chart, not a blank


def test_the_api_page_snippet_sends_a_shipped_example_photo(page):
    page.get_by_text("Use via API").click()
    page.wait_for_function("document.body.innerText.includes('api_name=\"/predict\"')")
    text = page.locator("body").inner_text()
    start = text.index('api_name="/predict"')
    snippet = text[text.rindex("client.predict(", 0, start):start]
    assert "photo=handle_file('demo/examples/pug_140.jpg')" in snippet, snippet
    assert "sample_file.pdf" not in text and "bus.png" not in text and "handle_file('http" not in text
