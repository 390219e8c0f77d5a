"""The petbreeds web demo: upload a pet photo, get its breed; plus labs for softmax, presizing and training.

Start it with ``python -m demo`` (see ``demo/app.py`` for the options). The modules, one topic each:

    settings       what the server operator chooses: model, training data, upload limit
    uploads        reading a visitor's file safely (our code decides what gets decoded)
    predict_tab    tab 1: which breed is my pet? (and when to say "not a cat or dog")
    softmax_lab    tab 2: softmax, log-softmax, NLL, cross-entropy, sigmoid, the log domain
    presize_lab    tab 3: presizing against the naive resize-then-rotate
    train_tab      tab 4: LR finder, fine_tune, interpretation, a model for this session
    page           the CSS and JavaScript of the page: phone layout, live verdict, examples named by breed
    app            the Gradio app: tabs, queue, launch; ``python -m demo``
    server         run the app in a child process (for tests and the benchmark)
"""

import os

# No usage statistics or version checks sent from the demo: it must work offline. This runs before
# any module of the package imports gradio, which reads the variable at import time.
os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
# Gradio's queue summarizes every event it has seen (up to 10,000, in a pandas DataFrame) twice per
# event, for a monitoring page the demo switches off: 2.5 ms per answer at first, 14 ms after 10,000
# answers (measured here). Summarized once every 2**62 events, that is never.
os.environ.setdefault("GRADIO_ANALYTICS_CACHE_FREQUENCY", str(2**62))
# OpenMP threads that spin while they wait for each other are fast on an idle machine, but when other
# processes keep the cores busy every forward pass waits for descheduled spinners: measured on this
# project's 2-core machine, 1.2 s per photo instead of 20 ms. Waiting threads that sleep avoid it.
# It only takes effect if torch is not imported yet (as with `python -m demo`); an operator's own
# setting wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

# Visitors are told apart by their network address (guard.py). Uvicorn would take it from an
# X-Forwarded-For header when the request comes from this machine: a client could then choose its own.
# An operator behind a reverse proxy who wants the proxy's header trusted sets the variable.
os.environ.setdefault("FORWARDED_ALLOW_IPS", "")

__all__: list[str] = []
