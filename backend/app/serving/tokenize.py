"""POST /tokenize and /detokenize (vLLM's shapes): token counts for clients that budget them."""

from __future__ import annotations

import asyncio

from ..core.errors import OpenAIError
from ..protocol import (
    ChatCompletionRequest,
    DetokenizeRequest,
    DetokenizeResponse,
    TokenizeRequest,
    TokenizeResponse,
)
from .chat import ChatService


class TokenizeService:
    def __init__(self, chat: ChatService) -> None:
        # The chat form renders through the chat endpoint's own code: the count is the prompt's.
        self.chat = chat
        self.ctx = chat.ctx

    def _ids(self, request: TokenizeRequest) -> list[int]:
        if request.messages is not None:
            chat = ChatCompletionRequest(
                model=request.model,
                messages=request.messages,
                tools=request.tools,
                tool_choice=request.tool_choice,
                add_generation_prompt=request.add_generation_prompt,
                continue_final_message=request.continue_final_message,
            )
            return self.chat.prompts(chat)[0]
        return self.ctx.tokenizer.encode(request.prompt or "", add_special_tokens=request.add_special_tokens)

    async def tokenize(self, request: TokenizeRequest) -> TokenizeResponse:
        self.ctx.check_model(request.model)
        if (request.prompt is None) == (request.messages is None):
            raise OpenAIError(400, "Send either 'prompt' (text) or 'messages' (a chat), not both or neither.")
        ids = await asyncio.to_thread(self._ids, request)
        return TokenizeResponse(
            count=len(ids),
            max_model_len=self.ctx.max_context,
            tokens=ids,
            token_strs=self.ctx.tokenizer.convert_ids_to_tokens(ids) if request.return_token_strs else None,
        )

    async def detokenize(self, request: DetokenizeRequest) -> DetokenizeResponse:
        self.ctx.check_model(request.model)
        vocab = len(self.ctx.tokenizer)
        for i, token in enumerate(request.tokens):
            if token >= vocab:
                raise OpenAIError(
                    400,
                    f"Token id {token} is not in this model's vocabulary (0..{vocab - 1}).",
                    param=f"tokens[{i}]",
                )
        return DetokenizeResponse(prompt=await asyncio.to_thread(self.ctx.tokenizer.decode, request.tokens))
