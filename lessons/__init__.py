"""The lessons: Jupyter notebooks that answer the pet-breeds chapter's questionnaire by running the engine.

Start with ``00_start_here.ipynb``. ``python -m lessons build`` runs them all and renders them to
HTML in ``lessons/_build/`` (see ``build.py``); ``questions.py`` holds the 19 questions.
"""
