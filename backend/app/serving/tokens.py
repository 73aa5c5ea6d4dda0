"""The text and raw bytes of single tokens, as logprobs report them."""

from __future__ import annotations

from functools import lru_cache

from transformers import PreTrainedTokenizerBase


class TokenTexts:
    def __init__(self, tokenizer: PreTrainedTokenizerBase) -> None:
        self.tokenizer = tokenizer
        decoder = tokenizer.backend_tokenizer.decoder if hasattr(tokenizer, "backend_tokenizer") else None
        self.byte_level = type(decoder).__name__ == "ByteLevel"
        self.byte_of = {ch: b for b, ch in _bytes_to_unicode().items()}

    @lru_cache(maxsize=65536)  # noqa: B019 - one instance per served model, lives as long as the app
    def get(self, token_id: int) -> tuple[str, list[int]]:
        piece = self.tokenizer.convert_ids_to_tokens(token_id)
        if self.byte_level and isinstance(piece, str) and all(c in self.byte_of for c in piece):
            raw = bytes(self.byte_of[c] for c in piece)
        elif isinstance(piece, str) and len(piece) == 6 and piece.startswith("<0x") and piece.endswith(">"):
            raw = bytes([int(piece[3:5], 16)])  # sentencepiece byte fallback
        else:
            raw = self.tokenizer.decode([token_id]).encode()
        try:
            text = raw.decode()
        except UnicodeDecodeError:
            # Part of a multi-byte character: spelled out as vLLM does, the bytes field has them too.
            text = "bytes:" + "".join(f"\\x{b:02x}" for b in raw)
        return text, list(raw)


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2's reversible map from bytes to printable characters, used by byte-level BPE."""
    printable = [
        *range(ord("!"), ord("~") + 1),
        *range(ord("¡"), ord("¬") + 1),
        *range(ord("®"), ord("ÿ") + 1),
    ]
    chars = printable[:]
    extra = 0
    for b in range(256):
        if b not in printable:
            printable.append(b)
            chars.append(256 + extra)
            extra += 1
    return dict(zip(printable, map(chr, chars), strict=True))
