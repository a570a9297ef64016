"""bench/vhd_upload.py's report over several rounds (the benchmark itself is not run here)."""

from __future__ import annotations

from bench.vhd_upload import fmt_row, median_figures, summary


def round_of(wall: float, requests: int) -> dict:
    row = {"wall": wall, "cpu": wall / 2, "bytes": 100 * requests, "requests": requests}
    return {"results": {"batchimage": row | {"writes": requests, "rss_mb": 80.0}}}


def test_two_rounds_give_whole_counts_and_a_printable_summary() -> None:
    medians = median_figures([round_of(2.0, 173), round_of(3.0, 1597)])
    ours = medians["batchimage"]
    assert ours["wall"] == 2.5
    assert ours["requests"] == 173  # a count that was measured, not 885.0
    assert "requests    173" in fmt_row(ours)
    facts = {"size": 2**30, "nonzero": 17300, "runs": 5, "chunks": 3}
    lines = summary("b", facts, medians, 2)
    assert "(medians of 2 round(s))" in lines[0]
    assert "bytes 1.0000x non-zero" in lines[-1]


def test_the_summary_names_the_fastest_loop_and_the_measured_costs() -> None:
    costs = {"request_ms": 5.0, "put_mb_s": 20.0, "join_gap": 100_000, "measured": 1}
    rounds = [
        {
            "results": {
                "loop-pages": {**round_of(9.0, 900)["results"]["batchimage"]},
                "loop-chunks": {**round_of(wall, 10)["results"]["batchimage"]},
                "batchimage": {**round_of(2.0, 50)["results"]["batchimage"], "costs": costs},
            }
        }
        for wall in (1.0, 3.0)
    ]
    medians = median_figures(rounds)
    assert medians["batchimage"]["costs"] == costs
    assert "joins gaps <= 100 kB" in fmt_row(medians["batchimage"])
    facts = {"size": 2**30, "nonzero": 5000, "runs": 900, "chunks": 10}
    last = summary("d", facts, medians, 2)[-1]
    assert "vs the fastest loop (loop-chunks): 1.00x" in last
