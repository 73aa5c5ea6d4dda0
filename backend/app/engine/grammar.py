"""Grammar-constrained decoding with llguidance: compiled grammars and each sequence's matcher.

llguidance was chosen over xgrammar by measurement on this project's default model (SmolLM2,
49,152 tokens; a nested JSON schema): compile 6 ms vs 19 ms, mask 0.19 ms vs 0.01 ms a token
(both far below a decode step), and it installs as one wheel where xgrammar pulls Triton.

A grammar is compiled once (off the event loop and off the engine step: `Grammars.compile` runs in
a worker thread) and cached by its text; each sequence then takes a cheap copy of the compiled
matcher, advanced token by token as the sequence grows.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

import llguidance
import llguidance.hf
import torch
from transformers import PreTrainedTokenizerBase

# Compiled grammars kept for reuse: a client sends the same schema with every request.
CACHE_SIZE = 256
_BIT = torch.arange(32, dtype=torch.int32)


class GrammarError(ValueError):
    """The grammar uses something llguidance cannot enforce, or is not a grammar at all."""


class Grammar:
    """A compiled grammar; `matcher()` gives a sequence its own state in it."""

    def __init__(self, template: llguidance.LLMatcher) -> None:
        self._template = template

    def matcher(self) -> Matcher:
        return Matcher(self._template.deep_copy())


class Matcher:
    """One sequence's place in its grammar."""

    def __init__(self, matcher: llguidance.LLMatcher) -> None:
        self._matcher = matcher
        self._words = torch.empty(0, dtype=torch.int32)

    def allowed(self, vocab_size: int) -> torch.Tensor:
        """The tokens the grammar allows next, as a bool mask over the vocabulary."""
        words = (vocab_size + 31) // 32
        if self._words.numel() != words:
            self._words = torch.empty(words, dtype=torch.int32)
        self._matcher.unsafe_compute_mask_ptr(self._words.data_ptr(), words * 4)
        bits = (self._words.unsqueeze(1) >> _BIT) & 1
        return bits.flatten()[:vocab_size].bool()

    def accept(self, token_id: int) -> None:
        self._matcher.consume_token(token_id)

    def rollback(self, num_tokens: int) -> None:
        """Undo the last num_tokens accepted (a speculative draft's look-ahead: sampling.verify)."""
        self._matcher.rollback(num_tokens)

    @property
    def done(self) -> bool:
        """The grammar is complete and allows nothing more (or the matcher failed)."""
        return self._matcher.is_stopped() or self._matcher.is_error()


class Grammars:
    """Compiles grammars for one tokenizer and vocabulary, caching them by grammar text."""

    def __init__(self, tokenizer: PreTrainedTokenizerBase, vocab_size: int, eos_ids: set[int]) -> None:
        self._tokenizer = llguidance.hf.from_tokenizer(
            tokenizer, n_vocab=vocab_size, eos_token=sorted(eos_ids) or None
        )
        self._cache: OrderedDict[str, Grammar] = OrderedDict()
        self._lock = threading.Lock()

    def compile(self, lark: str) -> Grammar:
        """Compile a grammar in llguidance's Lark syntax (`%json {...}` embeds a JSON schema).

        Raises GrammarError naming what cannot be enforced. Takes milliseconds to a second for
        large schemas: call it from a worker thread."""
        with self._lock:
            grammar = self._cache.get(lark)
            if grammar is not None:
                self._cache.move_to_end(lark)
                return grammar
        try:
            text = llguidance.LLMatcher.grammar_from_lark(lark)
        except Exception as exc:  # whatever the library refuses in a client's grammar
            raise GrammarError(str(exc)) from exc
        is_error, messages = llguidance.LLMatcher.validate_grammar_with_warnings(text, self._tokenizer)
        if is_error:
            raise GrammarError(messages[0])
        template = llguidance.LLMatcher(self._tokenizer, text, log_level=0)
        if template.is_error():
            raise GrammarError(template.get_error())
        grammar = Grammar(template)
        with self._lock:
            self._cache[lark] = grammar
            while len(self._cache) > CACHE_SIZE:
                self._cache.popitem(last=False)
        return grammar
