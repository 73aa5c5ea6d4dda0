"""Speculative decoding: the n-gram proposer, drafts planned and their KV rolled back, sampled
verification keeping each request's distribution, grammars, and answers exactly those without
speculation."""

from __future__ import annotations

import json
from collections import Counter

import torch

from app.core.metrics import ModelGauges, ModelsCollector
from app.engine.blocks import BLOCK_SIZE
from app.engine.engine import Engine
from app.engine.sampling import SampleState, SamplingParams, sample, verify
from app.engine.speculative import (
    AUTO_MAX_BATCH,
    AUTO_PAUSE,
    LONG_PROPOSED,
    MAX_PROPOSED,
    NgramProposer,
    Tally,
)

from .conftest import chat_ids, run_together, running_engine
from .test_grammar import GRAMMAR, SCHEMA
from .test_scheduler import scheduler, sequence

# Chi-square's 0.999 quantile at 5 degrees of freedom: a right sampler fails 1 run in 1000 (the
# seeds are fixed, so a given implementation passes or fails for good).
CHI2_5_999 = 20.52


def test_the_ngram_proposer_continues_the_latest_earlier_occurrence_of_the_longest_tail() -> None:
    proposer = NgramProposer(min_n=2, max_n=3)
    assert proposer.propose([1, 2, 3, 9, 1, 2, 3, 8, 5, 1, 2, 3], 2) == [8, 5]
    assert proposer.propose([5, 6, 7, 5, 6], 3) == [7, 5, 6]
    assert proposer.propose([1, 2, 3, 4, 1], 3) == []  # a tail of one token is too short
    # [7, 1, 2] occurred once, long ago; [1, 2] more recently: the longer match wins.
    tokens = [7, 1, 2, 8, 3, 1, 2, 9, 7, 1, 2]
    assert proposer.propose(tokens, 2) == [8, 3]
    assert NgramProposer(min_n=2, max_n=2).propose(tokens, 2) == [9, 7]


def test_a_draft_is_planned_as_extra_rows_and_its_rejected_tokens_kv_is_rolled_back() -> None:
    sched = scheduler(proposer=NgramProposer())
    seq = sequence("a", 20)
    seq.tokens[10:20] = seq.tokens[0:10]  # the prompt repeats itself: its end predicts more
    seq.speculate = True
    sched.add(seq)
    sched.admit()
    (plan,) = sched.steps()
    sched.prefilled(plan, 0.1, [seq.tokens[10]])  # its first token continues the repetition
    (plan,) = sched.steps()
    assert plan.decode == [] and plan.verify == [seq]
    assert seq.draft == seq.tokens[11 : 11 + MAX_PROPOSED]
    assert len(seq.table) * BLOCK_SIZE >= seq.num_cached + 1 + MAX_PROPOSED and len(seq.table) == 2
    # The model generates the first of the four, then another token: the keys of the last token
    # and of that one stay.
    sched.verified(plan, [[seq.draft[0], 99]])
    assert seq.num_cached == 22 and seq.tokens[-2:] == [1, 99] and seq.draft == [] and len(seq.table) == 2
    assert sched.stats.spec_proposed == MAX_PROPOSED and sched.stats.spec_accepted == 1
    # A draft crossing into a third block gives it back when rejected.
    seq.tokens = [*range(10), *range(50, 60), *range(9)]
    seq.num_cached = len(seq.tokens) - 1
    (plan,) = sched.steps()
    assert plan.verify == [seq] and seq.draft == [9, 50, 51, 52] and len(seq.table) == 3
    sched.verified(plan, [[77]])
    assert seq.num_cached == 29 and len(seq.table) == 2 and sched.blocks.in_use == 2
    # A sequence that may not speculate (penalties, logprobs: runner.speculable) never drafts.
    seq.speculate = False
    (plan,) = sched.steps()
    assert plan.verify == [] and plan.decode == [[seq]]


def test_auto_drafts_while_a_request_s_drafts_pay_and_never_in_a_large_batch() -> None:
    tally = Tally()
    # Drafts of four, none accepted: judged once past probation (three drafts), it waits
    # AUTO_PAUSE steps, tries again, and waits twice as long after failing again.
    for _ in range(2):
        tally.verified(4, 0)
        assert tally.may_draft()
    tally.verified(4, 0)
    assert [tally.may_draft() for _ in range(AUTO_PAUSE + 1)] == [False] * AUTO_PAUSE + [True]
    for _ in range(3):
        tally.verified(4, 0)
    assert sum(not tally.may_draft() for _ in range(4 * AUTO_PAUSE)) == 2 * AUTO_PAUSE
    assert tally.length == MAX_PROPOSED
    # Drafts that pay keep it drafting, its next pause back to the first's length, and nearly
    # all accepted lengthen its drafts.
    for accepted in (3, 4, 4):
        tally.verified(4, accepted)
    assert tally.may_draft() and tally.next_pause == AUTO_PAUSE and tally.length == LONG_PROPOSED
    # Beyond AUTO_MAX_BATCH requests, nobody drafts.
    sched = scheduler(proposer=NgramProposer(), auto=True)
    batch = [sequence(str(i), 20, first=100 * i) for i in range(AUTO_MAX_BATCH + 1)]
    for seq in batch:
        seq.tokens[10:20] = seq.tokens[0:10]
        seq.speculate = True
        sched.add(seq)
    sched.admit()
    (plan,) = sched.steps()
    sched.prefilled(plan, 0.1, [seq.tokens[10] for seq in batch])
    (plan,) = sched.steps()
    assert plan.verify == [] and len(plan.decoding) == len(batch)
    sched.decoded(plan, [seq.tokens[-10] for seq in batch])
    sched.remove(batch[-1])
    (plan,) = sched.steps()
    assert plan.verify == batch[:-1]
    sched.verified(plan, [[seq.tokens[-9]] for seq in plan.verify])
    # A request waiting for its prompt's turn counts too.
    sched.add(sequence("late", 20, first=900))
    (plan,) = sched.steps()
    assert plan.verify == [] and plan.decoding == batch[:-1]


def metrics_of(gauges: dict[str, ModelGauges]) -> list:
    collector = ModelsCollector()
    collector.read = lambda: gauges
    return list(collector.collect())


def chi_square(counts: Counter[int], probs: torch.Tensor) -> float:
    total = sum(counts.values())
    return sum((counts[i] - total * p) ** 2 / (total * p) for i, p in enumerate(probs.tolist()))


def test_sampled_verification_keeps_the_distribution_and_the_seeded_tokens() -> None:
    # Six tokens; the draft proposes token 1 then token 4.
    logits = torch.tensor(
        [[2.0, 1.0, 0.5, 0.0, -1.0, 1.5], [0.3, -0.5, 1.2, 0.0, 0.8, -1.0], [1.0, 0.0, 0.5, -0.5, 0.2, 0.0]]
    )
    draft = [1, 4]
    probs = torch.softmax(logits, dim=-1)
    first: Counter[int] = Counter()
    second: Counter[int] = Counter()
    draws = 4000
    for seed in range(draws):
        run = verify(logits, SampleState(SamplingParams(max_tokens=3, seed=seed), []), draft)
        first[run[0]] += 1
        if len(run) > 1:
            second[run[1]] += 1
    # The first token is p's, whether the draft's (accepted with probability p(1)) or another
    # (the residual); after an accept, the second is the next position's p.
    assert chi_square(first, probs[0]) < CHI2_5_999
    assert abs(first[1] / draws - float(probs[0, 1])) < 0.02
    assert chi_square(second, probs[1]) < CHI2_5_999
    # Seeded, with top-k and top-p: exactly the tokens decoding one position at a time samples.
    for seed in range(200):
        params = SamplingParams(max_tokens=3, temperature=0.7, top_k=4, top_p=0.9, seed=seed)
        run = verify(logits, SampleState(params, []), draft)
        state = SampleState(params, [])
        one_by_one = [sample(logits[i : i + 1], [state])[0][0] for i in range(len(run))]
        assert run == one_by_one
        assert run[:-1] == draft[: len(run) - 1]


def test_a_drafted_token_the_grammar_forbids_is_rejected(engine: Engine, model_and_tokenizer) -> None:
    _, tokenizer = model_and_tokenizer
    grammar = engine.grammars.compile(GRAMMAR)
    vocab = engine.model.config.get_text_config().vocab_size
    opening = tokenizer.encode('{"', add_special_tokens=False)
    forbidden = tokenizer.encode("Sure", add_special_tokens=False)[0]
    state = SampleState(SamplingParams(max_tokens=8, temperature=0.0, grammar=grammar), [])
    logits = torch.zeros(len(opening) + 1, vocab)
    logits[0, forbidden] = 10.0  # the model's favourite, which JSON cannot begin with
    logits[0, opening[0]] = 5.0
    before = state.matcher.allowed(vocab)  # type: ignore[union-attr]
    assert verify(logits[:1].clone(), state, [forbidden]) == [opening[0]]
    # An allowed draft is accepted, and the matcher is where it was: the output stage advances it.
    for i, token in enumerate(opening):
        logits[i + 1, token] = 10.0 if i + 1 < len(opening) else 0.0
    logits[0, forbidden] = 0.0
    run = verify(logits, state, opening)
    assert run[: len(opening)] == opening and len(run) == len(opening) + 1
    assert torch.equal(state.matcher.allowed(vocab), before)  # type: ignore[union-attr]


def test_answers_are_exactly_those_without_speculation(engine, model_and_tokenizer) -> None:
    model, tokenizer = model_and_tokenizer
    text = "def area(width, height):\n    return width * height\n\n" * 3
    quoting = chat_ids(tokenizer, f"Repeat this code exactly, then stop:\n{text}")
    trip = json.dumps({"city": "Lisbon", "days": 3})
    copying = chat_ids(tokenizer, f"Return this JSON exactly: {trip} {trip}")
    grammar = engine.grammars.compile(GRAMMAR)
    jobs = [
        (quoting, SamplingParams(max_tokens=48, temperature=0.0, ignore_eos=True)),
        (chat_ids(tokenizer, "Name three colours."), SamplingParams(max_tokens=24, temperature=0.0)),
        # Sampled and seeded: verified with the request's own draws (sampling.verify).
        (quoting, SamplingParams(max_tokens=32, temperature=0.3, top_p=0.9, seed=5, ignore_eos=True)),
        (copying, SamplingParams(max_tokens=40, temperature=0.0, grammar=grammar)),
        (copying, SamplingParams(max_tokens=40, temperature=0.5, seed=3, grammar=grammar)),
    ]
    plain = run_together(engine, jobs)
    with running_engine(model, tokenizer, speculative="ngram") as spec:
        together = run_together(spec, jobs)
        alone = [run_together(spec, [job])[0] for job in jobs[:1]]
        drafted = spec.stats.spec_proposed
        run_together(spec, jobs[3:])  # grammar-constrained requests draft too
        grammar_drafted = spec.stats.spec_proposed > drafted
        metrics = {m.name: m for m in metrics_of({"m": ModelGauges(True, speculation=spec.speculation)})}
        if spec.scheduler.proposer is None:
            # Verification is exact only where a row of several tokens computes what decoding
            # does (PrefixCache.name_answers): elsewhere it stays off.
            assert not spec.prefix.name_answers or spec.fast is None
        else:
            assert spec.stats.spec_accepted > 0 and grammar_drafted
            assert spec.stats.spec_proposed >= spec.stats.spec_accepted
            # /metrics: by model and proposer, the acceptance rate their ratio.
            counts = {"proposed": spec.stats.spec_proposed, "accepted": spec.stats.spec_accepted}
            for name, value in counts.items():
                family = metrics[f"llm_spec_{name}_tokens"]
                (total,) = [s for s in family.samples if s.name.endswith("_total")]
                assert total.labels == {"model": "m", "proposer": "ngram"} and total.value == value
    assert [r.token_ids for r in together] == [r.token_ids for r in plain]
    assert alone[0].token_ids == plain[0].token_ids
    assert [r.text for r in together] == [r.text for r in plain]
    for result in together[3:]:
        assert result.finish_reason == "stop"
        assert json.loads(result.text).keys() == SCHEMA["properties"].keys()
