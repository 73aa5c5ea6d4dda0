"""A worker thread's CPU thread count stays its own whatever another thread sets afterwards."""

from __future__ import annotations

import threading

import torch

from app.engine.threads import use_threads


def test_a_threads_count_survives_another_threads_setting() -> None:
    seen: list[int] = []
    pinned, other_done = threading.Event(), threading.Event()

    def worker() -> None:  # as the chat engine: pins its count, then waits for requests
        use_threads(2)
        pinned.set()
        other_done.wait(30)
        torch.ones(64).add_(1)  # its first parallel-capable operation after the other's setting
        seen.append(torch.get_num_threads())

    def other() -> None:  # as the embedder, started later with one thread
        torch.set_num_threads(1)

    before = torch.get_num_threads()
    try:
        first = threading.Thread(target=worker)
        first.start()
        pinned.wait(30)
        second = threading.Thread(target=other)
        second.start()
        second.join()
        other_done.set()
        first.join()
    finally:
        torch.set_num_threads(before)
    assert seen == [2]
