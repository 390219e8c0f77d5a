"""``python -m demo``: start the web demo."""

print(
    "petbreeds demo: a Gradio web app that names the breed of an uploaded cat or dog photo, "
    "with labs for softmax, presizing and training. It is not built yet; this command will start it."
)
