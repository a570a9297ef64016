"""Which zero gaps between data runs to join into one Put Page, within a bound on zero bytes.

A 4 MiB block's runs of non-zero pages (`scan.data_runs`) are put as they are, except where
two neighbours are joined across the zero gap between them: one request fewer, the gap's
zero bytes more. `Merger` joins a gap when it is no larger than the break-even gap of the
current cost estimate (`costs.PutCosts`), smallest gaps first, while its bank allows: the
bank grows by `bound` x each block's data bytes and pays for every gap joined, so the zero
bytes joined never exceed `bound` x the data bytes seen. Joins stay inside one block, so a
put is never more than 4 MiB (the Put Page limit).

Blocks may be credited ahead of being planned (the uploader reads a few blocks ahead): their
data grows the bank already, so a first block of file-system metadata, with wide gaps and
little data, can be joined on the credit of the blocks after it; and a block spends only
its share of the bank: what its gaps take when the gaps of all the blocks credited so far
are joined smallest first, so it leaves the bank to the smaller gaps of the blocks after
it.

`plan_block` also serves a resumed upload (`missing` says what the blob lacks): a gap the
blob already holds whole was joined by an earlier run and stays joined (charged to the
bank); a new gap is joined only between two runs the blob lacks entirely, so nothing the
blob holds is sent again, however the earlier run's estimates differed.
"""

from __future__ import annotations

import heapq
import itertools
from collections import deque
from collections.abc import Callable, Collection
from dataclasses import dataclass, field

Range = tuple[int, int]
Missing = Callable[[int, int], list[Range]]


def gaps(runs: list[Range]) -> list[int]:
    """The zero gaps between neighbouring `runs`: gaps(runs)[i] lies after runs[i]."""
    return [runs[i + 1][0] - runs[i][1] for i in range(len(runs) - 1)]


@dataclass
class Merger:
    """Chooses the gaps to join, block after block, keeping joined zeros within `bound`."""

    bound: float = 0.10  # zero bytes joined, at most this share of the data bytes
    bank: float = 0.0  # zero bytes that may still be joined
    joined: int = 0  # zero bytes joined so far (gaps an earlier run joined included)
    credited: int = 0  # data bytes credited so far
    window: deque[list[int]] = field(default_factory=deque)  # sorted gaps, credited blocks

    def credit(self, runs: list[Range]) -> None:
        """Count a block's data runs, read ahead of its planning (blocks in file order)."""
        data = sum(end - start for start, end in runs)
        self.credited += data
        self.bank += self.bound * data
        self.window.append(sorted(gaps(runs)))

    def close(
        self,
        runs: list[Range],
        join_gap: int,
        held: Collection[int] = (),
        allowed: Collection[int] | None = None,
    ) -> set[int]:
        """Indexes i of the gaps between runs[i] and runs[i + 1] to join, for the oldest block
        credited (credited now if none is): `held` ones always; others from `allowed`
        (default: all) up to `join_gap` bytes, smallest first, within the block's share."""
        if not self.window:
            self.credit(runs)
        sizes = gaps(runs)
        closed = set(held)
        for index in closed:
            self.bank -= sizes[index]
            self.joined += sizes[index]
        share = self._share(join_gap)
        self.window.popleft()
        candidates = sorted(
            (sizes[i], i)
            for i in (range(len(sizes)) if allowed is None else allowed)
            if i not in closed and sizes[i] <= join_gap
        )
        for gap, index in candidates:
            if gap > share or gap > self.bank:
                break
            share -= gap
            self.bank -= gap
            self.joined += gap
            closed.add(index)
        return closed

    def _share(self, join_gap: int) -> int:
        """The oldest credited block's share of the bank: the bytes of its gaps among those
        the bank pays for when all credited blocks' gaps up to `join_gap` are joined
        smallest first."""
        spent = share = 0
        tagged = (zip(sizes, itertools.repeat(block)) for block, sizes in enumerate(self.window))
        for gap, block in heapq.merge(*tagged):
            if gap > join_gap or spent + gap > self.bank:
                break
            spent += gap
            if block == 0:
                share += gap
        return share

    def merge(self, runs: list[Range], join_gap: int) -> list[Range]:
        """`runs` with the gaps `close` chooses joined."""
        return joined(runs, self.close(runs, join_gap))


def joined(runs: list[Range], closed: Collection[int]) -> list[Range]:
    """`runs` (sorted, disjoint) with the gaps after the runs indexed in `closed` filled."""
    out: list[Range] = []
    for index, (start, end) in enumerate(runs):
        if index and index - 1 in closed:
            out[-1] = (out[-1][0], end)
        else:
            out.append((start, end))
    return out


@dataclass(frozen=True)
class BlockPlan:
    """One block's share of the upload: what the blob must hold, and what to send for it."""

    holds: list[Range]  # data runs and joined gaps (absolute, sorted, disjoint)
    puts: list[Range]  # the parts of `holds` the blob lacks, one Put Page each


def plan_block(
    base: int, runs: list[Range], merger: Merger, join_gap: int, missing: Missing | None = None
) -> BlockPlan:
    """Plan the block at `base` whose data runs (relative to `base`) are `runs`; `missing`
    (absolute start, end -> the parts the blob lacks, asked in increasing order) for a resume."""
    runs = [(base + start, base + end) for start, end in runs]
    if missing is None:
        holds = merger.merge(runs, join_gap)
        return BlockPlan(holds, holds)
    run_parts: list[list[Range]] = []
    gap_parts: list[list[Range]] = []
    for index, run in enumerate(runs):
        if index:
            gap_parts.append(missing(runs[index - 1][1], run[0]))
        run_parts.append(missing(*run))
    held = [i for i, parts in enumerate(gap_parts) if not parts]
    lacked = [parts == [run] for parts, run in zip(run_parts, runs, strict=True)]
    allowed = [
        i
        for i, parts in enumerate(gap_parts)
        if parts == [(runs[i][1], runs[i + 1][0])] and lacked[i] and lacked[i + 1]
    ]
    closed = merger.close(runs, join_gap, held, allowed)
    puts: list[Range] = []
    for index, parts in enumerate(run_parts):
        for start, end in parts:
            if puts and puts[-1][1] == start:  # the gap before it is joined now
                puts[-1] = (puts[-1][0], end)
            else:
                puts.append((start, end))
        if index in closed and index not in held:
            puts[-1] = (puts[-1][0], runs[index + 1][0])
    return BlockPlan(joined(runs, closed), puts)


__all__ = ["BlockPlan", "Merger", "gaps", "joined", "plan_block"]
