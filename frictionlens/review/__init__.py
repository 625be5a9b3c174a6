"""``frictionlens review``: people judge the flagged conversations, and a blind random sample of
the others, in a local web app; their verdicts become ``frictionlens.review`` spans beside the
traces, from which ``frictionlens report`` measures each signal's precision and recall.

``queue`` and ``verdicts`` need no web framework (the report reads verdicts with them);
``app`` needs the ``review`` extra: ``pip install 'frictionlens[review]'``.
"""
