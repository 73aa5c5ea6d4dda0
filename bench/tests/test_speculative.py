"""The speculative-decoding load's prompts and its decode rate."""

from __future__ import annotations

from bench.load import LevelResult, StreamResult
from bench.speculative import ROUND, code_prompt, decode_rate, quote_prompt


def test_the_prompts_paste_what_they_ask_about() -> None:
    # The file to rewrite still holds the class the rename names, and the pasted document is the
    # settings page's first section, model settings included.
    (code,) = code_prompt()
    assert code["content"].count("IncrementalDetokenizer") >= 2
    (quote,) = quote_prompt()
    assert "CHAT_MODEL_PATH" in quote["content"] and 2_000 < len(quote["content"]) < 20_000


def test_the_decode_rate_leaves_out_each_stream_s_wait_for_its_first_token() -> None:
    streams = [
        StreamResult(sent=0.0, first=2.0, end=4.0, completion_tokens=21),
        StreamResult(sent=4.0, first=5.0, end=7.0, completion_tokens=41),
    ]
    assert decode_rate(LevelResult(1, 7.0, streams)) == (20 + 40) / (2.0 + 2.0)
    assert sorted(ROUND) == ["off", "off", "spec", "spec"] and ROUND[::-1] == ROUND
