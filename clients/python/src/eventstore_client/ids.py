"""Deterministic event ids.

A consumer that appends an event in reaction to another one makes the new
event's id a function of the source event, so that handling the source twice
(after a crash, a redelivery or a rebalance) appends nothing new: the sidecar
answers a retried append, by event id, with the original result.
"""

from __future__ import annotations

import uuid

#: EVENT_ID_NAMESPACE is the UUIDv5 namespace of :func:`deterministic_event_id`.
#: It is fixed forever: changing it changes every derived id. Other clients
#: derive the same ids as ``uuid5(EVENT_ID_NAMESPACE, f"{event_type}:{source}")``.
EVENT_ID_NAMESPACE = uuid.UUID("6f9c3b52-1d7e-5a4b-9f0e-8c2d4a6b1e37")


def deterministic_event_id(source_event_id: str, event_type: str) -> str:
    """deterministic_event_id derives the id of the event of event_type that
    reacts to the event source_event_id.

    It is a UUIDv5 over :data:`EVENT_ID_NAMESPACE` of
    ``"<event_type>:<source_event_id>"``: the same inputs always give the
    same id, and different event types derived from one source differ.
    """
    if not source_event_id:
        raise ValueError("source_event_id must not be empty")
    if not event_type:
        raise ValueError("event_type must not be empty")
    return str(uuid.uuid5(EVENT_ID_NAMESPACE, f"{event_type}:{source_event_id}"))
