"""Submissions of varied English text for the analyzer's tests."""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass

#: LEXICON is the toxicity lexicon the tests configure.
LEXICON = ("idiot", "moron", "scum", "imbecile", "jerk")

PEOPLE = (
    "Marie Curie",
    "Nelson Mandela",
    "Ada Lovelace",
    "Angela Merkel",
    "Haruki Murakami",
    "Frida Kahlo",
    "Barack Obama",
    "Serena Williams",
    "Albert Einstein",
    "Greta Thunberg",
    "Elon Musk",
    "Taylor Swift",
)
PLACES = (
    "Paris",
    "London",
    "Berlin",
    "Tokyo",
    "Nairobi",
    "Lisbon",
    "Toronto",
    "Mumbai",
    "Sydney",
    "Cairo",
    "Boston",
    "Madrid",
)
ORGS = (
    "Google",
    "the United Nations",
    "Siemens",
    "Airbus",
    "the World Health Organization",
    "Microsoft",
    "Greenpeace",
    "the BBC",
    "Toyota",
    "Oxfam",
)
CLEAN = (
    "{p} met executives from {o} in {c} on Monday.",
    "{o} announced a new research centre in {c}, and {p} will lead it.",
    "{p} flew from {c} to {c2} to speak at a conference organised by {o}.",
    "Reporters in {c} asked {p} about the latest report from {o}.",
    "The museum in {c} opened an exhibition about {p} with support from {o}.",
    "That was an idiotic plan by {o} in {c}, said {p}.",
)
ABUSIVE = (
    "{p} is a complete idiot and everyone in {c} knows it.",
    "Only morons would trust {o} with their savings in {c}.",
    "You are scum, {p}, and {c} deserves better.",
    "The imbeciles at {o} ruined {c} again.",
    "What a jerk {p} was at the meeting in {c}.",
)


@dataclass(frozen=True)
class Text:
    """Text is a submission's text and whether it was written to be toxic."""

    text: str
    abusive: bool


def texts(count: int, seed: int = 7) -> list[Text]:
    """texts returns count texts, every fifth one abusive."""
    rng = random.Random(seed)
    out = []
    for i in range(count):
        abusive = i % 5 == 4
        template = rng.choice(ABUSIVE if abusive else CLEAN)
        c, c2 = rng.sample(PLACES, 2)
        out.append(
            Text(
                template.format(p=rng.choice(PEOPLE), o=rng.choice(ORGS), c=c, c2=c2),
                abusive,
            )
        )
    return out


def submission_data(text: str) -> dict[str, str]:
    """submission_data is the payload of a ContentSubmitted event."""
    return {
        "content_id": str(uuid.uuid4()),
        "author_id": "user-1",
        "language": "en",
        "content": text,
    }
