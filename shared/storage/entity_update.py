"""Read-modify-write of state entities under ETags: read, apply a pure change, write with If-Match (or insert
only if absent), and when another writer got there first, read again and apply again, a bounded number of times.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from typing import Any

from shared.storage.ports import ConcurrencyConflict, Entity, EntityWrite, StateStore

EntityKey = tuple[str, str]  # (partition key, row key)
# What is stored (None: no entity) to what to store (None: leave it as it is). It runs again after every
# conflict, on what the other writer left, so it must not have effects of its own.
Change = Callable[[Mapping[str, Any] | None], Mapping[str, Any] | None]

DEFAULT_ROUNDS = 5


class KeptChanging(ConcurrencyConflict):
    """Another writer changed these entities between the read and the write of every round."""

    def __init__(self, table: str, keys: Collection[EntityKey], rounds: int) -> None:
        super().__init__(f"{table}: {len(keys)} entities changed under each of {rounds} rounds of read and write")
        self.keys = frozenset(keys)


def update_entity(
    state: StateStore,
    table: str,
    key: EntityKey,
    change: Change,
    *,
    known: Entity | None = None,
    rounds: int = DEFAULT_ROUNDS,
) -> Entity | None:
    """Apply `change` to one entity (first to `known`, when given, instead of reading it); returns the entity
    as written, or as stored when the change left it. Raises KeptChanging after `rounds` conflicts."""
    first = {key: known} if known is not None else {}
    return update_entities(state, table, {key: change}, known=first, rounds=rounds)[key]


def update_entities(
    state: StateStore,
    table: str,
    changes: Mapping[EntityKey, Change],
    *,
    known: Mapping[EntityKey, Entity | None] | None = None,
    rounds: int = DEFAULT_ROUNDS,
    on_conflict: Callable[[Collection[EntityKey]], None] | None = None,
) -> dict[EntityKey, Entity | None]:
    """Apply each change to its entity, writing them together (write_many) in each round; only the entities
    that conflicted are read again and go to the next round.

    `known` is what the caller believes is stored (None: absent), e.g. what it wrote last: those entities are
    not read in the first round, and a stale belief costs one conflict. `on_conflict` hears of each round's
    conflicts. Returns every entity as written or as left; raises KeptChanging after `rounds` rounds."""
    if rounds < 1:
        raise ValueError("rounds must be at least 1")
    believed: Mapping[EntityKey, Entity | None] = known or {}
    outcome: dict[EntityKey, Entity | None] = {}
    pending: list[EntityKey] = list(changes)
    for _ in range(rounds):
        keys: list[EntityKey] = []
        writes: list[EntityWrite] = []
        for key in pending:
            stored = believed[key] if key in believed else state.get(table, *key)
            wanted = changes[key](None if stored is None else stored.properties)
            if wanted is None:
                outcome[key] = stored
                continue
            keys.append(key)
            writes.append(EntityWrite(key[0], key[1], wanted, None if stored is None else stored.etag))
        conflicts: list[EntityKey] = []
        for key, written in zip(keys, state.write_many(table, writes) if writes else [], strict=True):
            if isinstance(written, ConcurrencyConflict):
                conflicts.append(key)
            else:
                outcome[key] = written
        if not conflicts:
            return outcome
        if on_conflict is not None:
            on_conflict(conflicts)
        believed, pending = {}, conflicts
    raise KeptChanging(table, pending, rounds)
