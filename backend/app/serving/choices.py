"""One choice's progress, output by output, and the usage of a response's choices."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from ..core.errors import OpenAIError
from ..engine.engine import RequestOutput
from ..engine.sampling import TokenLogprobs
from ..protocol import CompletionUsage, FinishReason, PromptTokensDetails


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

    def add(self, out: RequestOutput) -> None:
        self.logprobs.extend((entry, len(self.text)) for entry in out.logprobs)
        self.text += out.text
        self.prompt_tokens, self.completion_tokens = out.prompt_tokens, out.completion_tokens
        self.cached_tokens = out.cached_tokens
        if out.finish_reason is not None:
            self.finish_reason = "stop" if out.finish_reason == "stop" else "length"


def usage_of(choices: list[Choice], per_prompt: int) -> CompletionUsage:
    """Each prompt counts once, however many choices (`per_prompt`) it has; so do the tokens
    its first choice found in the prefix cache."""
    prompt = sum(c.prompt_tokens for c in choices[::per_prompt])
    completion = sum(c.completion_tokens for c in choices)
    return CompletionUsage(
        prompt_tokens=prompt,
        completion_tokens=completion,
        total_tokens=prompt + completion,
        prompt_tokens_details=PromptTokensDetails(
            cached_tokens=sum(c.cached_tokens for c in choices[::per_prompt])
        ),
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
