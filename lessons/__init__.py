"""The lessons: Jupyter notebooks that answer the pet-breeds chapter's questionnaire by running the engine.

Start with ``00_start_here.ipynb``; its first cell (the same in every notebook) sets everything up
in a clone, from an installed package or on a hosted notebook (``start.py``). ``python -m lessons
build`` runs them all and renders them to HTML (see ``build.py``); ``python -m lessons copy DEST``
copies them into a folder of your own (``workspace.py``); ``questions.py`` holds the 19 questions.
"""
