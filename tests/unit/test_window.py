"""The sliding window's merge is a set union then "keep the N newest": order, batching and repeats never matter."""

import random

from hypothesis import given
from hypothesis import strategies as st

from shared.readings.window import SlidingWindow, WindowEntry, summary_id

entries = st.lists(
    st.tuples(
        st.integers(min_value=0, max_value=10_000),
        st.text(alphabet="abcdef0123456789", min_size=1, max_size=6),
        st.floats(min_value=-50, max_value=150, allow_nan=False),
    ),
    max_size=60,
    unique_by=lambda e: e[1],  # a reading id names exactly one reading
)
sizes = st.integers(min_value=1, max_value=15)


def _expected(size: int, items: list[WindowEntry]) -> list[WindowEntry]:
    return sorted(items)[-size:]


@given(sizes, entries, st.randoms())
def test_result_does_not_depend_on_order_or_batching(size: int, items: list[WindowEntry], rnd: random.Random) -> None:
    shuffled = list(items)
    rnd.shuffle(shuffled)
    window = SlidingWindow(size)
    position = 0
    while position < len(shuffled):
        step = rnd.randint(1, 7)
        window.merge(shuffled[position : position + step])
        position += step
    assert window.entries == _expected(size, items)


@given(sizes, entries)
def test_merging_the_same_batch_again_changes_nothing(size: int, items: list[WindowEntry]) -> None:
    window = SlidingWindow(size, items)
    before = window.stats()
    assert window.merge(items) == 0
    assert window.stats() == before


@given(sizes, entries, st.data())
def test_duplicates_are_counted_once(size: int, items: list[WindowEntry], data: st.DataObject) -> None:
    repeats = data.draw(st.lists(st.sampled_from(items), max_size=30)) if items else []
    window = SlidingWindow(size, items + repeats)
    stats = window.stats()
    assert len(window) == min(size, len(items))
    if stats is not None:
        kept = _expected(size, items)
        assert stats.count == len(kept)
        assert stats.min == min(v for _, _, v in kept)
        assert stats.max == max(v for _, _, v in kept)


@given(sizes, entries)
def test_state_survives_a_json_round_trip(size: int, items: list[WindowEntry]) -> None:
    window = SlidingWindow(size, items)
    assert SlidingWindow.from_json(size, window.to_json()).entries == window.entries


def test_stats_of_a_known_window() -> None:
    window = SlidingWindow(3, [(1, "a", 10.0), (2, "b", 20.0), (3, "c", 30.0), (4, "d", 40.0)])
    stats = window.stats()
    assert stats is not None
    assert (stats.count, stats.min, stats.max, stats.avg) == (3, 20.0, 40.0, 30.0)
    assert (stats.first_ms, stats.last_ms, stats.newest_id) == (2, 4, "d")
    assert window.merge([(0, "old", 99.0)]) == 0  # older than all three kept readings


def test_empty_window_has_no_stats() -> None:
    assert SlidingWindow(5).stats() is None


def test_summary_id_is_deterministic_and_series_specific() -> None:
    assert summary_id("s1", "temperature", "r9") == summary_id("s1", "temperature", "r9")
    assert summary_id("s1", "temperature", "r9") != summary_id("s2", "temperature", "r9")
    assert summary_id("s1", "temperature", "r9") != summary_id("s1", "humidity", "r9")
    assert len(summary_id("s1", "temperature", "r9")) == 32


@given(sizes, st.lists(st.integers(0, 10_000), unique=True, max_size=60), st.randoms())
def test_in_time_order_every_new_reading_is_counted_once_whatever_the_batching(
    size: int, times: list[int], rnd: random.Random
) -> None:
    # Readings arriving in time order (a live stream) all enter the window, so the counts add up to all of them;
    # delivering any of them again adds nothing.
    items = [(t, f"r{t}", float(t)) for t in sorted(times)]
    window = SlidingWindow(size)
    counted, position = 0, 0
    while position < len(items):
        step = rnd.randint(1, 7)
        counted += window.merge(items[position : position + step])
        delivered = items[: position + step]
        counted += window.merge(rnd.sample(delivered, min(3, len(delivered))))  # redeliveries
        position += step
    assert counted == len(items)


def test_an_id_the_window_holds_with_other_content_is_refused_and_reported() -> None:
    window = SlidingWindow(3, [(1000, "r-1", 20.0), (2000, "r-2", 21.0)])
    conflicts: list[WindowEntry] = []

    changed = window.merge(
        [(1000, "r-1", 25.0), (1500, "r-2", 21.0), (2000, "r-2", 21.0), (3000, "r-3", 22.0)], conflicts
    )

    assert changed == 1  # only r-3 entered; the same r-2 again is a redelivery, not a conflict
    assert conflicts == [(1000, "r-1", 25.0), (1500, "r-2", 21.0)]  # another value; another time
    assert window.entries == [(1000, "r-1", 20.0), (2000, "r-2", 21.0), (3000, "r-3", 22.0)]


def test_an_id_that_has_left_the_window_cannot_be_told_from_a_new_reading() -> None:
    window = SlidingWindow(2, [(1000, "r-1", 20.0), (2000, "r-2", 21.0), (3000, "r-3", 22.0)])  # r-1 evicted
    conflicts: list[WindowEntry] = []

    window.merge([(1000, "r-1", 99.0), (4000, "r-1", 99.0)], conflicts)

    assert conflicts == []
    assert window.entries == [(3000, "r-3", 22.0), (4000, "r-1", 99.0)]


@given(sizes, entries, st.data())
def test_other_content_under_a_held_id_never_changes_the_window(
    size: int, items: list[WindowEntry], data: st.DataObject
) -> None:
    window = SlidingWindow(size, items)
    if not window.entries:
        return
    held = data.draw(st.sampled_from(window.entries))
    other = (
        held[0] + data.draw(st.integers(min_value=0, max_value=5)),
        held[1],
        held[2] + data.draw(st.sampled_from([0.0, 1.5])),
    )
    before = window.entries
    conflicts: list[WindowEntry] = []

    assert window.merge([other], conflicts) == 0
    assert window.entries == before
    assert conflicts == ([] if other == held else [other])
