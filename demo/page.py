"""What the page needs beyond Gradio's components: a little CSS and JavaScript, passed to ``launch``.

* **Phone first** (390x844): the tab buttons wrap instead of hiding behind a "..." menu (``gr.Tabs(
  overflow_behavior="wrap")`` in ``app.py``, and the CSS keeps them compact); the example galleries
  show all their thumbnails in the width of the screen (Gradio's grid wants 100 px a column, which
  made a phone scroll sideways); after a photo, ``SHOW_VERDICT_JS`` scrolls the answer into view if
  it is not on screen (on a phone it stacks under the photo).
* **Screen readers**: the verdict is a live region (read out when it changes), and the example
  thumbnails are named by their breed instead of Gradio's "Thumbnail 3 of 8" (their visible caption,
  the same words, is not read a second time); each tab starts with its name as a heading (``h2``,
  visually hidden), so the headings go h1, h2, h3 in order (``PAGE_JS``, which runs when the page
  loads and again whenever Gradio renders them anew).
* **axe-core** (``tests/test_accessibility.py``: 0 critical and 0 serious on every tab): ``PAGE_JS`` gives
  each plot an alt text from its label and ``PLOT_CAPTIONS`` (Gradio writes "undefined plot visualising
  provided data"), each image shown without an ``alt_text`` its label as alt text (else its button has
  no name), gives Gradio's empty placeholders the ``role="img"`` their ``aria-label`` needs, and
  lets the upload areas be named by the text they show; ``PAGE_CSS`` darkens the grey small print and
  the orange primary button to a contrast of at least 4.5:1. The plots are matplotlib figures on an
  opaque white background, so they stay readable in dark mode.

The elements are found by their ``elem_id`` (``#verdict``, ``#top5``, ``#predict-examples``...):
rename one there and here together.
"""

from __future__ import annotations

import json

__all__ = ["PAGE_CSS", "PAGE_JS", "PLOT_CAPTIONS", "SHOW_VERDICT_JS"]

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
/* Each tab's name as its heading (h2, between the page's h1 and the h3 in the tabs), for screen readers only */
.tab-heading { position: absolute; width: 1px; height: 1px; margin: -1px; padding: 0; overflow: hidden;
               clip: rect(0, 0, 0, 0); white-space: nowrap; border: 0; }
/* Contrast of at least 4.5:1 (WCAG AA): the theme's grey small print (#bbbbc2 on white, 1.9:1: info
   lines, slider ends, "or", the footer) and white on its orange primary buttons (2.8:1 light, 3.6:1 dark) */
html:root { --body-text-color-subdued: var(--neutral-600); }
html:root, html:root.dark, html:root .dark {
  --button-primary-background-fill: var(--primary-700);
  --button-primary-background-fill-hover: var(--primary-800);
}
"""

# A plot's alt text: its label, then what the picture shows (by the label given in the tab's code).
PLOT_CAPTIONS = {
    "Probabilities": "bar chart of the probability of each class: softmax, softmax at the chosen temperature, "
                     "and sigmoid (each class on its own); the table gives the same numbers.",
    "LR finder": "line chart of the smoothed loss against the learning rate (log scale), with the suggested "
                 "learning rates marked and given in the legend.",
    "Losses": "line chart of the training loss at each step (raw and smoothed) and the validation loss at the "
              "end of each epoch.",
    "Learning rate and momentum per step (one-cycle)": "two line charts over the training steps: the learning "
                                                       "rate of each parameter group (log scale), which rises "
                                                       "then falls, and the momentum, which does the opposite.",
    "Confusion matrix (validation)": "grid of the actual breed (rows) against the predicted breed (columns); "
                                     "the right answers lie on the diagonal. The table of most confused pairs "
                                     "gives the mistakes in words.",
}

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
  const captions = PLOT_CAPTIONS;
  const labelOf = (e) => e.closest('.block')?.querySelector('[data-testid=block-label]')?.innerText.trim() || '';
  const set = (e, attr, value) => { if (e.getAttribute(attr) !== value) e.setAttribute(attr, value); };
  const name = () => {
    document.querySelectorAll('.matplotlib img').forEach((img) => {  // plots: a real alt text
      const label = labelOf(img);
      set(img, 'alt', label ? label + ': ' + (captions[label] || 'a chart.') : 'A chart.');
    });
    document.querySelectorAll('.image-container img[alt=""]').forEach((img) => {  // an image without alt_text
      const label = labelOf(img);
      if (label) set(img, 'alt', label);
    });
    document.querySelectorAll('div.empty[aria-label]').forEach((e) => {  // an aria-label needs a role
      const label = labelOf(e);
      set(e, 'role', 'img');
      set(e, 'aria-label', label ? label + ': nothing to show yet' : 'Nothing to show yet');
    });
    document.querySelectorAll('button.upload-container[aria-label]').forEach((b) => {
      if (b.innerText.trim()) b.removeAttribute('aria-label');  // named by the text it shows
    });
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
      set(caption, 'aria-hidden', 'true');  // read once (the button's name), not again as its text
    });
    const tab = document.querySelector('button[role=tab][aria-selected=true]');
    document.querySelectorAll('[role=tabpanel]').forEach((panel) => {  // headings in order: h1, h2, h3
      if (!tab || panel.style.display === 'none') return;
      let heading = panel.querySelector(':scope > h2.tab-heading');
      if (!heading) {
        heading = document.createElement('h2');
        heading.className = 'tab-heading';
        panel.prepend(heading);
      }
      if (heading.textContent !== tab.innerText.trim()) heading.textContent = tab.innerText.trim();
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
""".replace("PLOT_CAPTIONS", json.dumps(PLOT_CAPTIONS))
