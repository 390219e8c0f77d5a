"""axe-core on every tab of the real demo, in Debian's chromium at a desktop (1366x900) and a phone (390x844).

Each tab must have 0 critical and 0 serious violations; the moderate and minor ones are printed
(``pytest -s`` shows them). axe-core is an npm package: ``.ci/run`` installs it once into
``.ci/node_modules`` (git-ignored), and the test reads ``axe.min.js`` from there, or from the file
that ``AXE_JS`` names. No network at test time, and never ``playwright install``.

Skipped (with the command that installs it) where axe-core or chromium is missing, except in CI
(``REQUIRE_PETS_SAMPLE=1``): there a missing piece is a failure.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.support.server import DemoServer

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = Path("/usr/bin/chromium")
AXE_JS = Path(os.environ.get("AXE_JS") or ROOT / ".ci" / "node_modules" / "axe-core" / "axe.min.js")
INSTALL = "npm install --prefix .ci --no-save axe-core@4"
ARGS = ["--no-sandbox", "--disable-background-networking", "--disable-gpu", "--no-first-run",
        "--disable-component-update", "--disable-sync"]
TABS = ["Which breed is my pet?", "Softmax & cross-entropy lab", "Presizing lab", "Train", "About"]
BLOCKING = ("critical", "serious")
# moderate and minor findings that were fixed, and must stay fixed: repeated alt text on the example
# thumbnails, the tabs' headings out of order (h1, then h3), the softmax lab's table without a header
FIXED = ("image-redundant-alt", "heading-order", "empty-table-header")

_missing = [f"{CHROMIUM} (apt-get install chromium)"] if not CHROMIUM.exists() else []
_missing += [f"axe-core at {AXE_JS} (run `{INSTALL}` in the checkout, or set AXE_JS)"] if not AXE_JS.exists() else []
if _missing and os.environ.get("REQUIRE_PETS_SAMPLE") != "1":
    pytest.skip(f"missing: {'; '.join(_missing)}; .ci/run installs both", allow_module_level=True)


@pytest.fixture(scope="module")
def browser():
    """``(browser, server)``: one demo server and one headless chromium for the module."""
    if _missing:
        pytest.fail(f"REQUIRE_PETS_SAMPLE=1 but missing: {'; '.join(_missing)}; .ci/run installs both")
    from playwright.sync_api import sync_playwright

    with DemoServer() as server, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=ARGS)
        yield browser, server
        browser.close()


def _axe(page) -> list[dict]:
    """axe-core's violations on the page as it is now (WCAG 2.x A and AA, and best practices)."""
    return page.evaluate("""async () => {
        const r = await axe.run(document, {resultTypes: ['violations']});
        return r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
            nodes: v.nodes.map(n => n.target.join(' ') + ' -- ' + n.failureSummary.replace(/\\s+/g, ' '))}));
    }""")


def _describe(violations: list[dict]) -> str:
    return "\n".join(f"  [{v['impact']}] {v['id']}: {v['help']}\n" + "\n".join(f"      {n[:300]}" for n in v["nodes"])
                     for v in violations)


CORNER = """img => {  // the pixel at (2, 2) of the picture, RGBA
  const c = document.createElement('canvas'); c.width = img.naturalWidth; c.height = img.naturalHeight;
  const g = c.getContext('2d'); g.drawImage(img, 0, 0); return [...g.getImageData(2, 2, 1, 1).data]; }"""


@pytest.mark.parametrize("size, theme", [((1366, 900), "light"), ((390, 844), "light"), ((1366, 900), "dark")],
                         ids=["desktop", "phone", "desktop-dark"])
def test_no_critical_or_serious_axe_violations_on_any_tab(browser, pets_sample, size, theme):
    browser, server = browser
    page = browser.new_page(viewport={"width": size[0], "height": size[1]})
    page.set_default_timeout(60_000)
    page.goto(server.url + f"?__theme={theme}")
    page.wait_for_selector("#photo-upload input[type=file]", state="attached")
    page.wait_for_function("document.querySelectorAll('#predict-examples .thumbnail-item img').length == 8")
    assert page.evaluate("!!document.querySelector('.dark')") == (theme == "dark")
    page.add_script_tag(content=AXE_JS.read_text())
    tabs = page.locator("button[role=tab]")
    assert [t.strip() for t in tabs.all_inner_texts()] == TABS  # a new tab: add it here, so that it is checked
    blocking = {}

    def check(name):
        violations = _axe(page)
        others = [v for v in violations if v["impact"] not in BLOCKING]
        if others:
            print(f"\n{name} at {size[0]}x{size[1]} ({theme}): moderate and minor violations\n{_describe(others)}")
        found = [v for v in violations if v["impact"] in BLOCKING or v["id"] in FIXED]
        if found:
            blocking[name] = _describe(found)

    for i, name in enumerate(TABS):
        tabs.nth(i).click()
        page.wait_for_function(f"document.querySelectorAll('button[role=tab]')[{i}].getAttribute('aria-selected')"
                               " == 'true'")
        page.wait_for_timeout(1_000)  # the tab's components render (plots draw their figure)
        check(name)
        if i == 0:  # and with an answer on the page: the verdict, the top 5, the map
            page.locator("#photo-upload input[type=file]").set_input_files(
                str(pets_sample / "images" / "keeshond_119.jpg"))
            page.wait_for_function("document.querySelector('#verdict').innerText.includes('ms with the shipped model')")
            page.locator("#looked img").wait_for(state="visible")
            check(name + " (after a photo)")
        if i == 2:  # and with its results: the three images and the augmented views of an example
            page.locator("#presize-examples .thumbnail-item").first.click()
            page.wait_for_function("[...document.querySelectorAll('.image-container img')].filter("
                                   "i => i.offsetParent !== null && i.complete && i.naturalWidth).length >= 3")
            page.wait_for_timeout(500)
            check(name + " (after an example)")
        if i == 1:  # the plot: a real alt text, and an opaque white picture (readable in dark mode too)
            plot = page.locator(".matplotlib img")
            alt = plot.get_attribute("alt")
            assert alt.startswith("Probabilities: bar chart") and "undefined" not in alt, alt
            assert plot.evaluate(CORNER) == [255, 255, 255, 255]
    headings = page.evaluate("[document.querySelector('h1, h2, h3'), ...document.querySelectorAll('h2.tab-heading')]"
                             ".map(h => h.tagName + ' ' + h.textContent)")
    page.close()
    assert not blocking, "critical or serious axe violations:\n" + "\n".join(f"{k}:\n{v}" for k, v in blocking.items())
    assert headings == ["H1 petbreeds", *(f"H2 {t}" for t in TABS)], headings  # each tab (all shown now) by its name


@pytest.fixture(scope="module")
def train_server(tmp_path_factory):
    """A server whose training data is all 37 breeds x 2 small generated photos: the confusion matrix
    has every breed's name, and a training takes seconds."""
    from engine.testing import write_labels_csv, write_synthetic_pets

    folder = tmp_path_factory.mktemp("train37")
    paths = write_synthetic_pets(folder / "images", n_per_breed=2, size=(64, 48), seed=3)
    with DemoServer(["--train-data", str(write_labels_csv(folder, paths, valid_per_breed=1))]) as server:
        yield server


@pytest.mark.parametrize("theme", ["light", "dark"])
def test_the_train_tab_after_a_short_training(browser, train_server, theme):
    # The shortest training the tests run (no unfrozen epoch, 2 head-only epochs), then axe on its plots
    # and tables, each plot's alt text and white background, and breed names readable in the confusion matrix.
    from demo.page import PLOT_CAPTIONS
    from demo.train_tab import CONFUSION_INCHES, CONFUSION_POINTS

    page = browser[0].new_page(viewport={"width": 1366, "height": 900})
    page.set_default_timeout(300_000)
    page.goto(train_server.url + f"?__theme={theme}")
    page.wait_for_selector("#photo-upload input[type=file]", state="attached")
    page.locator("button[role=tab]", has_text="Train").click()
    epochs = page.locator("input[type=number][aria-label^='number input for Head-only epochs']")
    epochs.fill("2")
    epochs.press("Enter")
    page.get_by_role("button", name="Find a learning rate, then train").click()
    page.wait_for_function("document.querySelector('#train-status')?.innerText.includes('Done in')")
    assert "2 head-only epochs" in page.locator("#train-status").inner_text()
    page.wait_for_function("document.querySelectorAll('.matplotlib img').length == 4")
    page.wait_for_timeout(1_000)
    page.add_script_tag(content=AXE_JS.read_text())
    violations = _axe(page)
    others = [v for v in violations if v["impact"] not in BLOCKING]
    if others:
        print(f"\nTrain (after a training, {theme}): moderate and minor violations\n{_describe(others)}")
    found = [v for v in violations if v["impact"] in BLOCKING or v["id"] in FIXED]
    assert not found, _describe(found)
    plots = page.locator(".matplotlib img")
    for i in range(plots.count()):
        alt = plots.nth(i).get_attribute("alt")
        assert any(alt == f"{label}: {caption}" for label, caption in PLOT_CAPTIONS.items()), alt
        assert plots.nth(i).evaluate(CORNER) == [255, 255, 255, 255], alt  # opaque white, in dark mode too
    confusion = page.locator(".matplotlib img[alt^='Confusion matrix']")
    natural, shown = confusion.evaluate("i => [i.naturalWidth, i.getBoundingClientRect().width]")
    assert natural == CONFUSION_INCHES * 100  # matplotlib's 100 dpi: 37 breeds get the largest figure
    # a label's height on the screen: its points, in inches (/ 72), in the picture's pixels, as shown
    label_px = CONFUSION_POINTS / 72 * natural / CONFUSION_INCHES * shown / natural
    assert label_px >= 10, (natural, shown, label_px)  # was about 5 px: 7 points, half the width
    pairs = page.locator(".block", has_text="Most confused pairs").last.inner_text()
    assert "(cat)" in pairs or "(dog)" in pairs, pairs  # the most confused pairs by their names too
    page.close()


def test_on_a_phone_the_train_tabs_controls_stack_instead_of_squeezing_their_labels(browser):
    browser, server = browser
    page = browser.new_page(viewport={"width": 390, "height": 844})
    page.set_default_timeout(60_000)
    page.goto(server.url)
    page.get_by_role("tab", name="Train").click()
    widths = {}
    for text in ("Use the LR finder's 'valley' suggestion as base LR", "Base LR (when not using the suggestion)",
                 "Mixed precision (bfloat16 on this CPU)", "Head-only epochs (on cached features: fast)"):
        box = page.get_by_text(text, exact=True).first.bounding_box()
        widths[text] = round(box["width"])
    page.close()
    assert all(w >= 180 for w in widths.values()), widths  # side by side they were 64 to 138 px wide
