"""Per-request sampling settings, and sampling a whole batch with each row's own settings."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field

import torch

from .grammar import Grammar, Matcher

# Below this temperature sampling is greedy: logits / 1e-300 overflow to inf (NaN after softmax)
# and such a row would pick token 0 or <|endoftext|> every step. vLLM uses the same bound.
GREEDY_BELOW = 1e-5


@dataclass(frozen=True)
class SamplingParams:
    max_tokens: int
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = 0
    presence_penalty: float = 0.0
    frequency_penalty: float = 0.0
    repetition_penalty: float = 1.0
    stop: tuple[str, ...] = ()
    seed: int | None = None
    logprobs: bool = False
    top_logprobs: int = 0
    ignore_eos: bool = False
    logit_bias: dict[int, float] = field(default_factory=dict)
    grammar: Grammar | None = None  # the answer must follow it (structured outputs, tool calls)
    # A turn of a conversation that sends its history back (a chat with an assistant message):
    # the answer is likely the next request's prefix, so the engine caches it (prefix_cache.py).
    conversation: bool = False

    @property
    def greedy(self) -> bool:
        return self.temperature < GREEDY_BELOW


@dataclass
class SampleState:
    """What one sequence carries between steps: its random stream, token counts and its place
    in its grammar."""

    params: SamplingParams
    prompt_ids: list[int]
    generator: torch.Generator = field(init=False)
    matcher: Matcher | None = field(init=False)
    output_counts: dict[int, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.generator = torch.Generator()
        # An unseeded request still gets its own stream, so all rows share one code path.
        self.generator.manual_seed(self.params.seed if self.params.seed is not None else secrets.randbits(63))
        self.matcher = self.params.grammar.matcher() if self.params.grammar is not None else None

    def record(self, token_id: int) -> None:
        self.output_counts[token_id] = self.output_counts.get(token_id, 0) + 1
        if self.matcher is not None:
            self.matcher.accept(token_id)

    @property
    def grammar_done(self) -> bool:
        return self.matcher is not None and self.matcher.done


@dataclass
class TokenLogprobs:
    token_id: int
    logprob: float
    top: list[tuple[int, float]]


def _apply_penalties(logits: torch.Tensor, state: SampleState) -> None:
    p = state.params
    if p.logit_bias:
        ids = torch.tensor(list(p.logit_bias), dtype=torch.long)
        logits[ids] += torch.tensor(list(p.logit_bias.values()), dtype=logits.dtype)
    if p.repetition_penalty != 1.0:
        # As in Transformers' RepetitionPenaltyLogitsProcessor: prompt and output tokens alike.
        seen = torch.tensor(sorted(set(state.prompt_ids) | state.output_counts.keys()), dtype=torch.long)
        picked = logits[seen]
        logits[seen] = torch.where(picked > 0, picked / p.repetition_penalty, picked * p.repetition_penalty)
    if state.output_counts and (p.presence_penalty or p.frequency_penalty):
        # OpenAI's definition: over generated tokens only.
        ids = torch.tensor(list(state.output_counts), dtype=torch.long)
        counts = torch.tensor(list(state.output_counts.values()), dtype=logits.dtype)
        logits[ids] -= counts * p.frequency_penalty + p.presence_penalty


def sample(logits: torch.Tensor, states: list[SampleState]) -> tuple[list[int], list[TokenLogprobs | None]]:
    """Pick one token per row of `logits` [batch, vocab] with each row's own settings.

    Every row is computed the same way whatever else is in the batch, and random rows draw from
    their own generator (exponential race: argmax p/E equals a multinomial draw), so a request
    gives the same tokens alone or batched.
    """
    logits = logits.float()
    raw_logprobs = torch.log_softmax(logits, dim=-1) if any(s.params.logprobs for s in states) else None
    for row, state in enumerate(states):
        _apply_penalties(logits[row], state)
        if state.matcher is not None:
            # Only this row is touched: the batch's other rows sample exactly as without it.
            logits[row].masked_fill_(~state.matcher.allowed(logits.shape[-1]), float("-inf"))

    tokens = torch.argmax(logits, dim=-1)
    random_rows = [i for i, s in enumerate(states) if not s.params.greedy]
    if random_rows:
        sub = logits[random_rows]
        temps = torch.tensor([states[i].params.temperature for i in random_rows]).unsqueeze(1)
        sub = sub / temps
        top_ks = [states[i].params.top_k for i in random_rows]
        top_ps = [states[i].params.top_p for i in random_rows]
        if any(k > 0 for k in top_ks) or any(p < 1.0 for p in top_ps):
            # Stable: tied logits (common in bf16) keep index order, so rank 0 is argmax's token
            # and top_k=1 or a tiny top_p gives exactly the greedy answer.
            sorted_logits, order = torch.sort(sub, dim=-1, descending=True, stable=True)
            rank = torch.arange(sub.shape[-1]).unsqueeze(0)
            k = torch.tensor([k if k > 0 else sub.shape[-1] for k in top_ks]).unsqueeze(1)
            drop = rank >= k
            probs = torch.softmax(sorted_logits.masked_fill(drop, float("-inf")), dim=-1)
            # Keep the smallest prefix whose mass reaches top_p (the first token always stays).
            before = torch.cumsum(probs, dim=-1) - probs
            drop |= (before >= torch.tensor(top_ps).unsqueeze(1)) & (rank > 0)
            sorted_logits = sorted_logits.masked_fill(drop, float("-inf"))
            sub = torch.full_like(sub, float("-inf")).scatter(1, order, sorted_logits)
        probs = torch.softmax(sub, dim=-1)
        noise = torch.stack(
            [torch.empty(sub.shape[-1]).exponential_(generator=states[i].generator) for i in random_rows]
        )
        tokens[random_rows] = torch.argmax(probs / noise, dim=-1)

    token_list: list[int] = tokens.tolist()
    logprobs: list[TokenLogprobs | None] = []
    for row, state in enumerate(states):
        if raw_logprobs is None or not state.params.logprobs:
            logprobs.append(None)
            continue
        row_lp = raw_logprobs[row]
        top: list[tuple[int, float]] = []
        if state.params.top_logprobs:
            values, ids = torch.topk(row_lp, state.params.top_logprobs)
            top = list(zip(ids.tolist(), values.tolist(), strict=True))
        logprobs.append(TokenLogprobs(token_list[row], float(row_lp[token_list[row]]), top))
    return token_list, logprobs


def verify(logits: torch.Tensor, state: SampleState, draft: list[int]) -> list[int]:
    """The tokens a sequence generates at its last token and each of its draft's positions
    (`logits` [len(draft) + 1, vocab]): the draft is accepted up to the first token that differs
    from the one sampled there, whose own token ends the run.

    Each position is sampled as decoding one token at a time samples it, with the next draw of
    the request's own generator; positions past the run draw nothing. So a request gets exactly
    the tokens it gets without speculation (greedy or seeded, alone or batched), and this is
    speculative sampling's rejection step for a proposer that drafts one token for sure (q a
    point mass: n-gram, a greedy draft model): the drafted token is accepted with probability
    p(token) = min(1, p/q), and a rejected position's token is a draw from p without it, the
    residual max(0, p - q) normalised; after a full accept the last token is a draw from p.
    """
    run: list[int] = []
    matcher = state.matcher
    consumed = 0
    for position in range(len(draft) + 1):
        (token,), _ = sample(logits[position : position + 1], [state])
        run.append(token)
        if position == len(draft) or token != draft[position]:
            break
        if matcher is not None:
            # The next position's mask follows this token; a drafted token the grammar forbids
            # is never sampled, so never accepted.
            matcher.accept(token)
            consumed += 1
            if matcher.done:  # the answer is complete: nothing after it is sampled
                break
    if consumed:
        matcher.rollback(consumed)  # type: ignore[union-attr]  # the output stage advances it as it emits
    return run
