"""An engine shut down lets go of its model at once, so an unloaded model's memory goes back."""

from __future__ import annotations

import gc
import weakref

from app.engine.sampling import SamplingParams

from .conftest import chat_ids, run_together, running_engine


def test_a_shut_down_engine_is_freed_without_the_cycle_collector(model_and_tokenizer) -> None:
    # Nothing the engine holds may refer back to it: a cycle keeps the engine, and what it holds
    # of the model (its packed weights, its KV cache), until the cyclic collector happens to run;
    # a server that unloaded the model kept its memory (test_api_model_registry.py).
    model, tokenizer = model_and_tokenizer
    gc.collect()
    gc.disable()
    try:
        with running_engine(model, tokenizer) as engine:
            [answer] = run_together(engine, [(chat_ids(tokenizer, "Hi!"), SamplingParams(max_tokens=3))])
            assert answer.token_ids
            freed = weakref.ref(engine)
        del engine
        assert freed() is None, [type(r).__name__ for r in gc.get_referrers(freed())]
    finally:
        gc.enable()
