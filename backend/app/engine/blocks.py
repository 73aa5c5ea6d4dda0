"""Which KV-cache blocks hold which tokens: allocation, reservations and the prefix cache.

The KV cache (kv_cache.py) is a pool of fixed-size blocks; a sequence owns a list of them (its
block table). A full block of prompt tokens is named by a hash of those tokens and of every token
before them, so a later request whose prompt starts the same way (the next turn of a chat, another
user with the same system prompt) takes the block instead of prefilling it again. A block nobody
uses any more keeps its contents while it is named: it is evicted, least recently used first, only
when a fresh block is needed.

Only keys computed as a prompt would compute them are named. Where every product computes a row
on its own and prompts use the weights that decode (loader.rows_independent, no dense prefill
weights), a generated token's keys are exactly those, so an answer's blocks are named as they
fill. Where prompts use other weights (DENSE_PREFILL), generated keys differ from a prompt's: the
engine prefills a conversation turn's answer again, in pieces as it comes, and names those blocks
(prefix_cache.py, WARM_TOKENS); other answers are prefilled by whichever prompt repeats them. Either way
a later prompt gets exactly the keys, and the tokens, a cold cache gives.

Pure bookkeeping on the engine's thread: no tensors here.
"""

from __future__ import annotations

import hashlib
from array import array
from collections import OrderedDict

BLOCK_SIZE = 16

# Block 0 never holds a sequence's tokens: padding reads and writes go there.
PAD_BLOCK = 0


def block_hashes(token_ids: list[int], limit: int) -> list[bytes]:
    """The chained hash of each full block among the first `limit` tokens.

    SHA-256, not Python's hash(): token ids hash to themselves there, so a user could craft a
    prompt that collides with another user's and read their cached keys.
    """
    return extend_hashes([], token_ids, limit // BLOCK_SIZE)


def extend_hashes(hashes: list[bytes], token_ids: list[int], blocks: int) -> list[bytes]:
    """`hashes` (of the first blocks of these tokens) extended in place to `blocks` blocks."""
    for index in range(len(hashes), blocks):
        chunk = array("q", token_ids[index * BLOCK_SIZE : (index + 1) * BLOCK_SIZE]).tobytes()
        hashes.append(hashlib.sha256((hashes[-1] if hashes else b"") + chunk).digest())
    return hashes


class BlockManager:
    """Blocks 1..num_blocks-1 of the pool: free, in use (counted), or cached (named, unused).

    A request is admitted when the blocks its prompt still needs are there (free or evictable);
    they are promised to it until its prefill takes them. Blocks are taken only as tokens
    arrive, so memory in use follows the tokens; a decoding sequence that finds none left makes
    the scheduler preempt the newest request (scheduler.py).
    """

    def __init__(self, num_blocks: int, caching: bool) -> None:
        self.num_blocks = num_blocks
        self.caching = caching
        # Lowest ids first, so the pool's pages are touched in order and memory grows with use.
        self._free: list[int] = list(range(num_blocks - 1, PAD_BLOCK, -1))
        self._refs = [0] * num_blocks
        self._hash_of: dict[int, bytes] = {}
        self._by_hash: dict[bytes, int] = {}
        self._evictable: OrderedDict[int, None] = OrderedDict()  # least recently used first
        self.promised = 0  # blocks promised to admitted prompts and not yet taken

    @property
    def usable(self) -> int:
        return self.num_blocks - 1

    @property
    def in_use(self) -> int:
        return self.usable - len(self._free) - len(self._evictable)

    def spare(self) -> int:
        """Blocks neither in use nor promised: free, or cached and unused (evictable)."""
        return len(self._free) + len(self._evictable) - self.promised

    def lookup(self, hashes: list[bytes]) -> list[int]:
        """The cached blocks that hold the longest prefix of these hashes."""
        if not self.caching:
            return []
        hit: list[int] = []
        for h in hashes:
            block = self._by_hash.get(h)
            if block is None:
                break
            hit.append(block)
        return hit

    def can_admit(self, hit: list[int], need: int) -> bool:
        """Room for a prompt that reuses `hit` and needs `need` fresh blocks."""
        pinned = sum(1 for b in hit if b in self._evictable)
        return need + pinned <= self.spare()

    def admit(self, hit: list[int], need: int) -> None:
        for block in hit:
            if self._refs[block] == 0:
                del self._evictable[block]
            self._refs[block] += 1
        self.promised += need

    def take(self, promised: bool) -> int | None:
        """A fresh block (out of a promise, or from what is spare); None when there is none."""
        if not promised and self.spare() <= 0:
            return None
        if promised:
            self.promised -= 1
        if self._free:
            block = self._free.pop()
        else:
            block, _ = self._evictable.popitem(last=False)
            del self._by_hash[self._hash_of.pop(block)]
        self._refs[block] = 1
        return block

    def name(self, block: int, h: bytes) -> None:
        """Publish a full block of prompt tokens under its hash (the first one named wins)."""
        if self.caching and h not in self._by_hash and block not in self._hash_of:
            self._by_hash[h] = block
            self._hash_of[block] = h

    def release(self, blocks: list[int], unused_promise: int) -> None:
        """A sequence ended or was preempted: its named blocks stay cached, the rest are free."""
        self.promised -= unused_promise
        for block in reversed(blocks):  # a prompt's last blocks are evicted before its first
            self._refs[block] -= 1
            if self._refs[block]:
                continue
            if block in self._hash_of:
                self._evictable[block] = None
            else:
                self._free.append(block)
        self._free.sort(reverse=True)
