"""Joining data runs across zero gaps: the measured costs decide, the zero bound caps it, a
put stays within 4 MiB, and a resumed upload keeps an earlier run's joins without re-sending."""

from __future__ import annotations

import itertools

from hypothesis import given
from hypothesis import strategies as st

from batchimage.azure.vhd.costs import FLOOR_GAP, PutCosts
from batchimage.azure.vhd.joins import Merger, Missing, plan_block
from batchimage.azure.vhd.ranges import Coverage
from batchimage.azure.vhd.scan import BLOCK, PAGE

KIB = 1024
Range = tuple[int, int]


def runs_with_gaps(gaps: list[int], run: int = 8 * KIB) -> list[Range]:
    """Runs of `run` bytes separated by the given gaps (in bytes)."""
    runs, pos = [], 0
    for gap in [*gaps, 0]:
        runs.append((pos, pos + run))
        pos += run + gap
    return runs


def zeros(ranges: list[Range], runs: list[Range]) -> int:
    """Zero bytes `ranges` hold beyond the data `runs`."""
    return sum(e - s for s, e in ranges) - sum(e - s for s, e in runs)


def test_a_target_with_slow_requests_joins_more() -> None:
    runs = runs_with_gaps([KIB, 8 * KIB, 32 * KIB, 128 * KIB, 512 * KIB] * 4)
    far = PutCosts.known(0.080, 10e6).estimate().join_gap  # 800 kB
    near = PutCosts.known(0.002, 20e6).estimate().join_gap  # 40 kB
    fast = PutCosts.known(0.0001, 20e6).estimate().join_gap  # 2 kB
    counts = [len(Merger(bound=100.0).merge(runs, gap)) for gap in (far, near, fast)]
    assert counts == [1, 1 + 4 * 2, 1 + 4 * 4]  # all / gaps up to 32 KiB / the 1 KiB ones


def test_joined_gaps_are_never_wider_than_the_break_even_gap() -> None:
    runs = runs_with_gaps([PAGE * n for n in range(1, 60)])
    for gap in (FLOOR_GAP, 4 * KIB, 20 * KIB):
        merged = Merger(bound=100.0).merge(runs, gap)
        gaps = [b[0] - a[1] for a, b in itertools.pairwise(runs)]
        assert len(merged) == 1 + sum(1 for g in gaps if g > gap)


def test_the_smallest_gaps_go_first() -> None:
    runs = [(0, 10 * PAGE), (11 * PAGE, 20 * PAGE), (30 * PAGE, 40 * PAGE)]
    merger = Merger(bound=0.05)  # bank 0.05 x 30 pages = 1.5 pages: only the 1-page gap fits
    assert merger.merge(runs, BLOCK) == [(0, 20 * PAGE), (30 * PAGE, 40 * PAGE)]
    assert merger.joined == PAGE


@given(
    blocks=st.lists(
        st.tuples(
            st.lists(st.integers(min_value=1, max_value=300), min_size=1, max_size=40),
            st.integers(min_value=1, max_value=64),  # run length in pages
            st.sampled_from([FLOOR_GAP, 8 * KIB, 100 * KIB, BLOCK]),  # estimate at this block
        ),
        min_size=1,
        max_size=6,
    ),
    bound=st.sampled_from([0.0, 0.01, 0.05, 0.10, 1000.0]),
    ahead=st.sampled_from([0, 1, 4]),
)
def test_the_zero_bound_holds_over_any_blocks_and_estimates(
    blocks: list[tuple[list[int], int, int]], bound: float, ahead: int
) -> None:
    merger = Merger(bound=bound)
    all_runs = [runs_with_gaps([g * PAGE for g in gaps], pages * PAGE) for gaps, pages, _ in blocks]
    credited = extra = 0
    for index, (runs, (_, _, join_gap)) in enumerate(zip(all_runs, blocks, strict=True)):
        while credited < min(len(blocks), index + 1 + ahead):  # blocks read ahead
            merger.credit(all_runs[credited])
            credited += 1
        merged = merger.merge(runs, join_gap)
        extra += zeros(merged, runs)
        assert extra == merger.joined <= bound * merger.credited + 1e-6  # after every block
        assert all(merged[i][1] < merged[i + 1][0] for i in range(len(merged) - 1))
        for start, end in runs:  # each run inside exactly one range
            assert sum(1 for s, e in merged if s <= start and end <= e) == 1
        if bound == 0.0:
            assert merged == runs


def test_blocks_read_ahead_pay_for_a_sparse_first_block() -> None:
    # file-system metadata first: little data, wide gaps; then dense blocks with small gaps
    sparse = runs_with_gaps([60 * KIB] * 9, run=4 * KIB)  # 40 KiB of data, 540 KiB of gaps
    dense = runs_with_gaps([PAGE] * 100, run=32 * KIB)  # 3.3 MB of data, 50 KiB of gaps
    alone = Merger(bound=0.10)
    assert len(alone.merge(sparse, BLOCK)) == 10  # a bank of 4 kB pays for nothing
    ahead = Merger(bound=0.10)
    for runs in (sparse, dense, dense, dense):
        ahead.credit(runs)
    assert len(ahead.merge(sparse, BLOCK)) == 1  # on the credit of the blocks after it
    assert [len(ahead.merge(dense, BLOCK)) for _ in range(3)] == [1, 1, 1]
    assert ahead.joined <= 0.10 * ahead.credited


def test_a_block_leaves_the_bank_to_the_smaller_gaps_of_the_blocks_after_it() -> None:
    wide = runs_with_gaps([3 * KIB] * 100, run=8 * KIB)
    narrow = runs_with_gaps([PAGE] * 100, run=8 * KIB)
    alone = Merger(bound=0.05)  # 41 kB a block: 13 of wide's gaps, then 83 of narrow's
    assert [len(alone.merge(runs, BLOCK)) for runs in (wide, narrow)] == [88, 18]
    ahead = Merger(bound=0.05)
    for runs in (wide, narrow):
        ahead.credit(runs)
    # wide leaves 51 kB to narrow's 100 small gaps and joins 10 with the rest: 92 puts, not 106
    assert [len(ahead.merge(runs, BLOCK)) for runs in (wide, narrow)] == [91, 1]


def test_a_put_never_exceeds_4_mib() -> None:
    # a whole block of 1-page runs and 1-page gaps, a huge bound and a far target: one put
    runs = [(start, start + PAGE) for start in range(0, BLOCK, 2 * PAGE)]
    merger = Merger(bound=10.0)
    for index in range(3):
        plan = plan_block(index * BLOCK, runs, merger, BLOCK)
        assert plan.puts == plan.holds == [(index * BLOCK, (index + 1) * BLOCK - PAGE)]
    dense = plan_block(3 * BLOCK, [(0, BLOCK)], merger, BLOCK)
    assert dense.puts == [(3 * BLOCK, 4 * BLOCK)]  # touching the next block, never joined to it


def missing_from(held: list[Range]) -> Missing:
    """A `missing` function for a blob that holds `held` (sorted, disjoint)."""
    return Coverage(held).missing


@st.composite
def earlier_run(draw: st.DrawFn) -> tuple[list[Range], list[Range], int]:
    """Runs of a block, the puts an interrupted earlier run planned for them (with its own
    estimate), which of those made it to the blob, and this run's estimate."""
    gaps = draw(st.lists(st.integers(min_value=1, max_value=40), min_size=0, max_size=30))
    runs = runs_with_gaps([g * PAGE for g in gaps], draw(st.integers(1, 16)) * PAGE)
    before = draw(st.sampled_from([FLOOR_GAP, 4 * KIB, 16 * KIB, BLOCK]))
    now = draw(st.sampled_from([FLOOR_GAP, 4 * KIB, 16 * KIB, BLOCK]))
    first = plan_block(0, runs, Merger(bound=draw(st.sampled_from([0.0, 0.1, 0.5]))), before)
    done = [put for put in first.puts if draw(st.booleans())]
    return runs, done, now


@given(case=earlier_run(), bound=st.sampled_from([0.0, 0.1, 0.5]))
def test_a_resume_keeps_earlier_joins_and_sends_nothing_twice(
    case: tuple[list[Range], list[Range], int], bound: float
) -> None:
    runs, done, join_gap = case
    plan = plan_block(0, runs, Merger(bound=bound), join_gap, missing_from(done))
    # nothing the blob holds is sent again, and what is sent is part of what it must hold
    for start, end in plan.puts:
        assert all(end <= s or e <= start for s, e in done)
        assert any(s <= start and end <= e for s, e in plan.holds)
    # afterwards the blob holds exactly the planned ranges: the final page-range check passes
    assert union(done + plan.puts) == union(plan.holds)
    for start, end in runs:
        assert any(s <= start and end <= e for s, e in plan.holds)
    assert all(end - start <= BLOCK for start, end in plan.puts)


def test_a_resume_joins_new_gaps_only_between_runs_the_blob_lacks() -> None:
    runs = runs_with_gaps([PAGE] * 5)  # 6 runs of 8 KiB, 1-page gaps
    held = [(runs[0][0], runs[1][1]), (runs[3][0], runs[3][1])]  # runs 0-1 joined, run 3 alone
    plan = plan_block(0, runs, Merger(bound=1.0), BLOCK, missing_from(held))
    # gap 0 is held; gaps 1, 2, 3 touch a run the blob holds: not joined; gap 4 is
    assert plan.holds == [runs[0][:1] + runs[1][1:], runs[2], runs[3], (runs[4][0], runs[5][1])]
    assert plan.puts == [runs[2], (runs[4][0], runs[5][1])]


def union(ranges: list[Range]) -> list[Range]:
    """Sorted ranges with touching ones joined."""
    out: list[Range] = []
    for start, end in sorted(ranges):
        if out and out[-1][1] >= start:
            out[-1] = (out[-1][0], max(out[-1][1], end))
        else:
            out.append((start, end))
    return out
