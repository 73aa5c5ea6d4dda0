"""Speculative decoding: the n-gram proposer, drafts planned and their KV rolled back, and greedy
answers exactly those without speculation."""

from __future__ import annotations

from app.engine.blocks import BLOCK_SIZE
from app.engine.sampling import SamplingParams
from app.engine.speculative import MAX_PROPOSED, NgramProposer

from .conftest import chat_ids, run_together, running_engine
from .test_scheduler import scheduler, sequence


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
    # A sequence that may not speculate (sampled, penalties, grammar, logprobs) never drafts.
    seq.speculate = False
    (plan,) = sched.steps()
    assert plan.verify == [] and plan.decode == [[seq]]


def test_greedy_answers_are_exactly_those_without_speculation(engine, model_and_tokenizer) -> None:
    model, tokenizer = model_and_tokenizer
    text = "def area(width, height):\n    return width * height\n\n" * 3
    quoting = chat_ids(tokenizer, f"Repeat this code exactly, then stop:\n{text}")
    jobs = [
        (quoting, SamplingParams(max_tokens=48, temperature=0.0, ignore_eos=True)),
        (chat_ids(tokenizer, "Name three colours."), SamplingParams(max_tokens=24, temperature=0.0)),
        (quoting, SamplingParams(max_tokens=24, temperature=0.8, seed=5)),  # sampled: never drafts
    ]
    plain = run_together(engine, jobs)
    with running_engine(model, tokenizer, speculative="ngram") as spec:
        together = run_together(spec, jobs)
        alone = [run_together(spec, [job])[0] for job in jobs[:1]]
        if spec.scheduler.proposer is None:
            # Verification is exact only where a row of several tokens computes what decoding
            # does (PrefixCache.name_answers): elsewhere it stays off.
            assert not spec.prefix.name_answers or spec.fast is None
        else:
            assert spec.stats.spec_accepted > 0
            assert spec.stats.spec_proposed >= spec.stats.spec_accepted
    assert [r.token_ids for r in together] == [r.token_ids for r in plain]
    assert alone[0].token_ids == plain[0].token_ids
    assert [r.text for r in together] == [r.text for r in plain]
