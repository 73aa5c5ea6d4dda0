"""Speculative decoding with a draft model (engine/draft.py): answers exactly those without
speculation, the draft's own cache kept right through rejections, its memory given back, and the
clear errors of a draft that cannot draft."""

from __future__ import annotations

import pytest
import torch
from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

from app.core.config import REPO_ROOT, Settings
from app.engine.draft import CATCH_UP_TOKENS, DraftProposer
from app.engine.engine import Engine
from app.engine.loader import ModelLoadError, batch_invariant_products
from app.engine.sampling import SamplingParams
from app.engine.speculative import AUTO_MIN_ACCEPTANCE, NgramProposer, Tally
from app.services import build_services

from .conftest import chat_ids, run_together, running_engine
from .test_scheduler import scheduler


def tiny_llama(seed: int, vocab_size: int) -> LlamaForCausalLM:
    """A random-weight Llama of the default model's vocabulary, as the loader leaves a model
    (the default model's attention kernel, float32)."""
    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=vocab_size,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=2048,
    )
    model = LlamaForCausalLM._from_config(config, attn_implementation="batch_invariant").eval()
    batch_invariant_products(model)
    return model


def test_the_default_model_drafting_for_itself_gives_the_same_answers_greedy_drafts_all_accepted(
    engine: Engine, model_and_tokenizer
) -> None:
    model, tokenizer = model_and_tokenizer
    prompt = chat_ids(tokenizer, "Write a short poem about the sea.")
    jobs = [
        (prompt, SamplingParams(max_tokens=40, temperature=0.0, ignore_eos=True)),
        (chat_ids(tokenizer, "Name three colours."), SamplingParams(max_tokens=24, temperature=0.0)),
        # Sampled and seeded: the request's own draws verify the draft (sampling.verify).
        (prompt, SamplingParams(max_tokens=32, temperature=0.8, top_p=0.95, seed=7, ignore_eos=True)),
    ]
    plain = run_together(engine, jobs)
    with running_engine(model, tokenizer, speculative="draft", draft=(model, tokenizer)) as spec:
        drafted = run_together(spec, jobs[:2])
        proposer = spec.scheduler.proposer
        if proposer is not None:  # elsewhere verification is not exact: it stays off (Engine)
            assert isinstance(proposer, DraftProposer) and set(spec.speculation) == {"draft"}
            # The same model drafts what it generates: greedy drafts are all accepted.
            proposed, accepted = spec.speculation["draft"]
            assert accepted == proposed >= 40
        drafted += run_together(spec, jobs[2:])
        if proposer is not None:
            # Ended requests' draft caches are given back.
            assert proposer.seqs == {} and proposer.blocks.in_use == 0
    assert [r.token_ids for r in drafted] == [r.token_ids for r in plain]


def test_a_draft_that_disagrees_still_gives_the_target_s_tokens_and_its_cache_stays_right(
    model_and_tokenizer,
) -> None:
    _, tokenizer = model_and_tokenizer
    vocab = len(tokenizer)
    target, draft = tiny_llama(1, vocab), tiny_llama(2, vocab)
    prompts = [chat_ids(tokenizer, "Count to ten."), chat_ids(tokenizer, "Say hello " * 30)]
    jobs = [(p, SamplingParams(max_tokens=24, temperature=0.0, ignore_eos=True)) for p in prompts]
    jobs.append((prompts[0], SamplingParams(max_tokens=24, temperature=1.0, seed=3, ignore_eos=True)))
    with running_engine(target, tokenizer) as plain:
        expected = run_together(plain, jobs)
    with running_engine(target, tokenizer, speculative="draft", draft=(draft, tokenizer)) as spec:
        got = run_together(spec, jobs)
        assert spec.scheduler.proposer is None or spec.stats.spec_proposed > 0
    assert [r.token_ids for r in got] == [r.token_ids for r in expected]

    # The draft's cache after drafts rejected and tokens accepted proposes what a fresh cache
    # of the same tokens does; a prompt longer than a step's catch-up is fed over steps.
    proposer = DraftProposer(draft, vocab, num_blocks=64)
    tokens = prompts[1] * 3
    assert len(tokens) > CATCH_UP_TOKENS
    assert proposer.draft([("a", tokens, 4)]) == [[]]  # still catching up
    first = proposer.draft([("a", tokens, 4)])[0]
    assert len(first) == 4
    other = next(t for t in range(vocab) if t != first[1])
    for step in ([first[0], other], [7], [*proposer.draft([("a", tokens, 4)])[0][:2], 9, 11]):
        tokens = tokens + step
        fresh = DraftProposer(draft, vocab, num_blocks=64)
        fresh.draft([("b", tokens, 4)])
        assert proposer.draft([("a", tokens, 4)]) == fresh.draft([("b", tokens, 4)])
    proposer.forget("a")
    assert proposer.blocks.in_use == 0


def test_a_draft_of_another_vocabulary_or_none_at_all_is_a_clear_start_up_error(
    model_and_tokenizer, tmp_path
) -> None:
    model, tokenizer = model_and_tokenizer
    other = AutoTokenizer.from_pretrained(REPO_ROOT / "models" / "all-MiniLM-L6-v2")
    stranger = tiny_llama(3, len(other))
    stranger.name_or_path = "all-MiniLM-L6-v2"
    mismatch = r"all-MiniLM-L6-v2 .*SmolLM2-135M-Instruct.*tokenizers"
    with (
        pytest.raises(ModelLoadError, match=mismatch),
        running_engine(model, tokenizer, draft=(stranger, other)),
    ):
        pass
    with (
        pytest.raises(ValueError, match="needs a draft model"),
        running_engine(model, tokenizer, speculative="draft"),
    ):
        pass
    # The server says which setting is missing, or which folder is wrong, before loading.
    with pytest.raises(ValueError, match="SPECULATIVE=draft needs SPECULATIVE_DRAFT_MODEL"):
        build_services(Settings(speculative="draft", data_dir=tmp_path))
    with pytest.raises(ModelLoadError, match=r"Draft .*has no config\.json"):
        build_services(Settings(speculative="draft", speculative_draft_model=tmp_path, data_dir=tmp_path))


class CostlyProposer(NgramProposer):
    token_s = 0.05  # a drafted token costs a decode pass, as the model drafting for itself


def test_auto_judges_a_draft_model_s_drafts_by_what_drafting_them_costs() -> None:
    sched = scheduler(20, proposer=CostlyProposer(), auto=True)
    assert sched.least_acceptance == AUTO_MIN_ACCEPTANCE  # no pass measured yet
    for elapsed in (0.04, 0.05, 0.06, 0.05):
        sched.passed(elapsed)
    assert sched.least_acceptance == pytest.approx(AUTO_MIN_ACCEPTANCE + 0.05 / sched.step_s)
    # Drafts all accepted do not pay when a drafted token costs what a step does: paused.
    tally = Tally()
    for _ in range(3):  # past probation
        tally.verified(4, 4, sched.least_acceptance)
    assert not tally.may_draft()
    # Prompt lookup costs nothing: the same drafts go on.
    sched.proposer = NgramProposer()
    tally = Tally()
    for _ in range(3):  # past probation
        tally.verified(4, 4, sched.least_acceptance)
    assert tally.may_draft() and sched.least_acceptance == AUTO_MIN_ACCEPTANCE
