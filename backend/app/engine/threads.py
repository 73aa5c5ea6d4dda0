"""Each worker thread's own CPU thread count, kept whatever other threads set later."""

from __future__ import annotations

import torch


def use_threads(count: int) -> None:
    """This thread's intra-op thread count, for good. PyTorch sets a thread's OpenMP count from
    a process-wide value at the thread's first parallel operation, so without the read below the
    last torch.set_num_threads of any thread wins: the embedder's 1 made the chat engine
    single-threaded in the server (one core busy of two: ~40 vs ~57 tokens/s at one stream)."""
    torch.set_num_threads(count)
    torch.get_num_threads()  # that first-use setup, now, while the value is ours
    torch.set_num_threads(count)
