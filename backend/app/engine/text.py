"""Turning token ids into text as they come: incremental decoding and stop strings."""

from __future__ import annotations

from tokenizers import Tokenizer
from tokenizers.decoders import DecodeStream


class IncrementalDetokenizer:
    """Text deltas for one sequence, O(1) per token.

    DecodeStream holds back bytes that do not yet form a whole character, so a multi-byte
    character split over tokens is never emitted as U+FFFD; stop strings are held back until
    they either match (and are cut) or cannot match any more.
    """

    def __init__(self, tokenizer: Tokenizer, stop: tuple[str, ...]) -> None:
        self._tokenizer = tokenizer
        self._stream = DecodeStream(skip_special_tokens=True)
        self._stop = stop
        self._pending = ""

    def feed(self, token_id: int) -> tuple[str, str | None]:
        """Returns the text that may be shown now, and the stop string reached, if any (the one
        that starts first: Anthropic's API names it)."""
        piece = self._stream.step(self._tokenizer, token_id) or ""
        if not self._stop:
            return piece, None
        text = self._pending + piece
        hits = [(at, stop) for stop in self._stop if (at := text.find(stop)) >= 0]
        if hits:
            self._pending = ""
            at, stop = min(hits)
            return text[:at], stop
        hold = self._held_suffix(text)
        self._pending = text[len(text) - hold :]
        return text[: len(text) - hold], None

    def flush(self) -> str:
        """What is still held back when the sequence ends for another reason."""
        text, self._pending = self._pending, ""
        return text

    def _held_suffix(self, text: str) -> int:
        """Length of the longest tail of `text` that could still grow into a stop string."""
        best = 0
        for stop in self._stop:
            for n in range(min(len(stop) - 1, len(text)), best, -1):
                if stop.startswith(text[-n:]):
                    best = n
                    break
        return best
