"""What the page needs beyond Gradio's components: a little CSS and JavaScript, passed to ``launch``.

* **Phone first** (390x844): the tab buttons wrap instead of hiding behind a "..." menu (``gr.Tabs(
  overflow_behavior="wrap")`` in ``app.py``, and the CSS keeps them compact); the example galleries
  show all their thumbnails in the width of the screen (Gradio's grid wants 100 px a column, which
  made a phone scroll sideways); after a photo, ``SHOW_VERDICT_JS`` scrolls the answer into view if
  it is not on screen (on a phone it stacks under the photo).
* **Screen readers**: the verdict is a live region (read out when it changes), and the example
  thumbnails are named by their breed instead of Gradio's "Thumbnail 3 of 8" (``PAGE_JS``, which
  runs when the page loads and again whenever Gradio renders them anew).

The elements are found by their ``elem_id`` (``#verdict``, ``#top5``, ``#predict-examples``...):
rename one there and here together.
"""

from __future__ import annotations

__all__ = ["PAGE_CSS", "PAGE_JS", "SHOW_VERDICT_JS"]

PAGE_CSS = """
/* Tabs: compact buttons on a phone, so that five take two lines at most */
@media (max-width: 640px) {
  .tab-container button[role="tab"] { padding-left: 8px; padding-right: 8px; font-size: var(--text-md); }
}
/* Example galleries: columns shrink with the screen (Gradio's own minimum is 100 px each) */
.example-gallery .grid-container { grid-template-columns: repeat(var(--grid-cols), minmax(0, 1fr)); }
/* as tall as its thumbnails (no empty box below them), and the first row starts below the label */
.example-gallery .grid-wrap { min-height: 0; padding-top: var(--size-8); }
@media (max-width: 640px) {
  .example-gallery .grid-container { grid-template-rows: none; grid-auto-rows: auto; }
  .example-gallery .thumbnail-item { aspect-ratio: 1; }
  .example-gallery .caption-label { font-size: 11px; }
}
"""

# Scroll the answer into view when it is not on screen already (on a desktop it is, beside the
# photo); not when the photo was cleared. Runs after each prediction (an event's ``.then``).
SHOW_VERDICT_JS = """
() => {
  requestAnimationFrame(() => {
    const verdict = document.querySelector('#verdict');
    const top5 = document.querySelector('#top5');
    if (!verdict || verdict.innerText.trim().startsWith('No photo yet')) return;
    const first = verdict.getBoundingClientRect(), last = (top5 || verdict).getBoundingClientRect();
    if (first.top < 0 || last.bottom > window.innerHeight) verdict.scrollIntoView({block: 'start'});
  });
}
"""

PAGE_JS = """
() => {
  const name = () => {
    const verdict = document.querySelector('#verdict');
    if (verdict && verdict.getAttribute('aria-live') !== 'polite') {
      verdict.setAttribute('aria-live', 'polite');
      verdict.setAttribute('role', 'status');
    }
    document.querySelectorAll('.example-gallery .thumbnail-item').forEach((item) => {
      const caption = item.querySelector('.caption-label');
      const text = caption ? caption.innerText.trim() : '';
      if (!text) return;
      const label = 'Example: ' + text;
      if (item.getAttribute('aria-label') !== label) item.setAttribute('aria-label', label);
      const img = item.querySelector('img');
      if (img && img.getAttribute('alt') !== text) img.setAttribute('alt', text);
    });
  };
  let queued = false;
  new MutationObserver(() => {
    if (queued) return;
    queued = true;
    requestAnimationFrame(() => { queued = false; name(); });
  }).observe(document.body, {childList: true, subtree: true, attributes: true, attributeFilter: ['aria-label', 'alt']});
  name();
}
"""
