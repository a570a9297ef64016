"""A signal stops the command wherever the kernel delivers it: batchimage's own threads
block SIGINT and SIGTERM (so the main thread takes them), and a prompt waits in short
slices, so a signal taken by any other thread is handled within a fraction of a second."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap

from batchimage.core import threads
from tests.engine.procs import REPO


def test_threads_started_by_batchimage_block_both_signals() -> None:
    seen: list[set[int]] = []
    thread = threads.start(
        lambda: seen.append(signal.pthread_sigmask(signal.SIG_BLOCK, [])), name="t"
    )
    thread.join()
    assert {signal.SIGINT, signal.SIGTERM} <= seen[0]
    assert signal.SIGTERM not in signal.pthread_sigmask(signal.SIG_BLOCK, [])  # caller's mask kept


PROMPT = textwrap.dedent(
    """
    import signal, sys, threading, time
    from batchimage.commands.terminal import read_line

    def interrupt(signum, frame):
        raise KeyboardInterrupt

    def waiting_at_the_prompt():
        frame = sys._current_frames()[threading.main_thread().ident]
        return frame.f_code.co_name == "read_line"

    def signal_this_thread():  # once the main thread waits in read_line
        while not waiting_at_the_prompt():
            time.sleep(0.01)
        signal.pthread_kill(threading.get_ident(), signal.SIGTERM)

    signal.signal(signal.SIGTERM, interrupt)
    threading.Thread(target=signal_this_thread, daemon=True).start()
    try:
        read_line()
    except KeyboardInterrupt:
        print("interrupted at the prompt")
    """
)


def test_a_signal_taken_by_another_thread_interrupts_a_prompt() -> None:
    # stdin is a pipe that stays open and empty: a blocking read would never return.
    empty, held_open = os.pipe()
    run = subprocess.Popen(
        [sys.executable, "-c", PROMPT], cwd=REPO, stdin=empty, stdout=subprocess.PIPE, text=True
    )
    os.close(empty)
    try:
        out, _ = run.communicate(timeout=30)
    finally:
        run.kill()
        os.close(held_open)
    assert out.strip() == "interrupted at the prompt"
    assert run.returncode == 0
