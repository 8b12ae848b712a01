"""arabtag: tag Arabic news with entities (PER, ORG, LOC, DATE) and sentence
stance (mediation, conflict, energy), and score any output against gold.

The same tagger and scorer as the ``arabtag`` command line:

>>> import arabtag
>>> tagger = arabtag.Tagger("models/default.toml")        # loads once
>>> records = tagger.tag(["قال بوتين في باكو ...", {"id": "a1", "text": "..."}])
>>> report = arabtag.evaluate("seeds/gold.jsonl", records, docs="seeds")

``Tagger.tag`` returns the records ``arabtag tag`` writes (one dict per
document, in order; an error record ``{"id", "error"}`` for a document that
cannot be tagged); ``evaluate`` returns the object ``arabtag eval --json``
prints.
"""

from ._arabtag import ArabtagError, Tagger, __version__, evaluate

__all__ = ["ArabtagError", "Tagger", "evaluate", "__version__"]
