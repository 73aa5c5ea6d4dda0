"""One choice's progress, output by output, and the usage of a response's choices."""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from ..core.errors import OpenAIError
from ..engine.engine import RequestOutput
from ..engine.sampling import TokenLogprobs
from ..protocol import CompletionTokensDetails, CompletionUsage, FinishReason, PromptTokensDetails


@dataclass
class Choice:
    """Fed output by output, for a stream and a collected body alike."""

    text: str = ""
    # Each token's logprobs with the offset in `text` where the token's text begins.
    logprobs: list[tuple[TokenLogprobs, int]] = field(default_factory=list)
    finish_reason: FinishReason = "length"
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0
    stop_sequence: str | None = None  # the stop string that ended it, if one did
    # The text's length and completion_tokens after each output: which tokens wrote which text.
    marks: list[tuple[int, int]] = field(default_factory=list)

    def add(self, out: RequestOutput) -> None:
        self.logprobs.extend((entry, len(self.text)) for entry in out.logprobs)
        self.text += out.text
        self.prompt_tokens, self.completion_tokens = out.prompt_tokens, out.completion_tokens
        self.cached_tokens = out.cached_tokens
        self.stop_sequence = out.stop_sequence or self.stop_sequence
        self.marks.append((len(self.text), self.completion_tokens))
        if out.finish_reason is not None:
            self.finish_reason = "stop" if out.finish_reason == "stop" else "length"

    def tokens_through(self, length: int) -> int:
        """The completion tokens that wrote the first `length` characters of the text: those up
        to the output that reached it."""
        if length <= 0:
            return 0
        at = bisect_left(self.marks, length, key=lambda mark: mark[0])
        return self.marks[min(at, len(self.marks) - 1)][1]


def usage_of(choices: list[Choice], per_prompt: int, reasoning_tokens: int | None = None) -> CompletionUsage:
    """Each prompt counts once, however many choices (`per_prompt`) it has; so do the tokens
    its first choice found in the prefix cache. `reasoning_tokens`: of a thinking model's answers
    (they count in completion_tokens too)."""
    prompt = sum(c.prompt_tokens for c in choices[::per_prompt])
    completion = sum(c.completion_tokens for c in choices)
    return CompletionUsage(
        prompt_tokens=prompt,
        completion_tokens=completion,
        total_tokens=prompt + completion,
        prompt_tokens_details=PromptTokensDetails(
            cached_tokens=sum(c.cached_tokens for c in choices[::per_prompt])
        ),
        completion_tokens_details=None
        if reasoning_tokens is None
        else CompletionTokensDetails(reasoning_tokens=reasoning_tokens),
    )


async def collect_choices(
    outputs: AsyncIterator[tuple[int, RequestOutput]], texts: list[str]
) -> list[Choice]:
    """Every choice to its end; `texts` are what each choice's text starts with (an echo, or "")."""
    choices = [Choice(text=text) for text in texts]
    async for index, out in outputs:
        if out.error is not None:
            raise OpenAIError(500, out.error, type="server_error")
        choices[index].add(out)
    return choices
