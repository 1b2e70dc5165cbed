"""Pure deciders of a team's log: `decide(state, command) -> events`, `evolve(state, event)`.

A Faust agent (or a test) keeps one `TeamState` per team and, per command:

    envelope = MAPPER.decode_command_envelope(raw)  # once, at the edge
    records, state = decide_and_seal(state, envelope, presence_ttl=settings.ttl)
    # send the records (keyed by team_id), wait for acks, then store `state`, then commit

`fold(records)` rebuilds a state from the log. Nothing here does I/O or reads the clock.
"""

from streams.domain.decide import DEFAULT_PRESENCE_TTL, decide
from streams.domain.decided import DecidedIds
from streams.domain.evolve import evolve
from streams.domain.presence import aggregate
from streams.domain.sealing import (
    EVENT_ID_NAMESPACE,
    ChainError,
    apply_record,
    decide_and_seal,
    event_id,
    fold,
    seal_events,
)
from streams.domain.state import (
    ActiveCall,
    Device,
    Room,
    TeamState,
    UserPresence,
    recorded,
    state_from_bytes,
    state_to_bytes,
)

__all__ = [
    "DEFAULT_PRESENCE_TTL",
    "EVENT_ID_NAMESPACE",
    "ActiveCall",
    "ChainError",
    "DecidedIds",
    "Device",
    "Room",
    "TeamState",
    "UserPresence",
    "aggregate",
    "apply_record",
    "decide",
    "decide_and_seal",
    "event_id",
    "evolve",
    "fold",
    "recorded",
    "seal_events",
    "state_from_bytes",
    "state_to_bytes",
]
