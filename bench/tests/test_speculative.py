"""The speculative-decoding load's prompts, its decode rate and the page's draft-model section."""

from __future__ import annotations

from bench.load import LevelResult, StreamResult
from bench.speculative import DRAFT_HEADING, ROUND, code_prompt, decode_rate, quote_prompt, with_section


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


def test_the_draft_rows_replace_their_own_section_and_keep_the_rest() -> None:
    page = "# Speculative\n\n| a |\n\n## Verdict\n\nGood.\n"
    first = with_section(page, f"{DRAFT_HEADING}\n\n| one |\n")
    assert first == page + f"\n{DRAFT_HEADING}\n\n| one |\n"
    second = with_section(first.replace("## Verdict", "## Other"), f"{DRAFT_HEADING}\n\n| two |\n")
    assert "| one |" not in second and second.endswith("| two |\n") and "## Other\n\nGood." in second
    middle = with_section(f"{DRAFT_HEADING}\n\n| one |\n\n## Verdict\n", f"{DRAFT_HEADING}\n\n| two |\n\n")
    assert middle == f"{DRAFT_HEADING}\n\n| two |\n\n## Verdict\n"
