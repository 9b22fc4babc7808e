"""The content analyzer: spaCy over every ContentSubmitted event.

It subscribes to the event store in the consumer group ``analyzer``, finds
named entities, checks lemmas against a toxicity lexicon and counts tokens,
and appends a ContentAnalyzed event to the submission's stream. See
:mod:`content_analyzer.worker` for the delivery protocol and
:mod:`content_analyzer.nlp` for the analysis.
"""

__version__ = "0.1.0"
