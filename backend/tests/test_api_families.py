"""Each supported model family, served by one real server that has them all in its MODELS_DIR:
a tiny model of it (families.py) with its own chat template, whose answer is its family's call of
`now`. The template renders what the server sends it, the answer comes back as text without
tools, and with them it is read as a call in the family's format (Hermes `<tool_call>`, Llama 3
JSON, Mistral `[TOOL_CALLS]`, GLM-4's name line), streamed or not; a conversation that carries
the call and its result back renders too."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import families
import httpx
import pytest
from api_support import REQUEST_TIMEOUT_S, post_stream
from families import FAMILIES, Family
from server_process import ServerProcess, start_server

from app.serving.tools import template_renders_tools, tool_format

NOW = {"type": "function", "function": {"name": "now", "parameters": {"type": "object", "properties": {}}}}
HI = [{"role": "user", "content": "Hi"}]
NAMES = [f.name for f in FAMILIES]


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, ServerProcess]]:
    """One server for every family: their folders in its MODELS_DIR, each loaded when first named."""
    root = tmp_path_factory.mktemp("families")
    for family in FAMILIES:
        families.build(family, root / family.name)
    server = start_server(
        root.parent / "families.log",
        CHAT_MODEL_PATH="",
        EMBEDDING_MODEL_PATH="",
        MODELS_DIR=str(root),
        KEEP_ALIVE="-1",
        NUM_THREADS="1",
        KV_CACHE_MEMORY_GB="0.05",  # not a cache sized for the machine, nine times
        MAX_MODEL_LEN="1024",
    )
    try:
        yield dict.fromkeys(NAMES, server)
    finally:
        server.stop()


@pytest.fixture(params=NAMES)
def family(request: pytest.FixtureRequest) -> Family:
    return families.BY_NAME[request.param]


@pytest.fixture
def http(servers: dict[str, ServerProcess], family: Family) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=servers[family.name].url, timeout=REQUEST_TIMEOUT_S) as client:
        yield client


def post(http: httpx.Client, path: str, body: dict[str, Any]) -> dict[str, Any]:
    resp = http.post(path, json=body)
    assert resp.status_code == 200, resp.text
    return resp.json()


def rendered(http: httpx.Client, family: Family, **extra: Any) -> str:
    """The prompt the server builds for a chat, as text (special tokens included)."""
    ids = post(http, "/tokenize", {"model": family.name, "messages": HI, **extra})["tokens"]
    return str(post(http, "/detokenize", {"model": family.name, "tokens": ids})["prompt"])


def call_text(family: Family) -> str:
    """The model's answer as the detokenizer writes it: special tokens dropped."""
    tokenizer = family.tokenizer()
    ids = [i for piece in family.call for i in tokenizer.encode(piece, add_special_tokens=False)]
    return str(tokenizer.decode(ids, skip_special_tokens=True))


def test_the_format_is_read_from_the_tokenizer() -> None:
    for family in FAMILIES:
        tokenizer = family.tokenizer()
        native = template_renders_tools(tokenizer)
        assert (tool_format(tokenizer) if native else "hermes") == family.tool_format, family.name


def test_the_template_renders_the_conversation(http: httpx.Client, family: Family) -> None:
    prompt = rendered(http, family)
    for marker in family.markers:
        assert marker in prompt, (family.name, prompt)
    # The tools reach the prompt: through the family's template, or the generic tool prompt.
    assert '"now"' in rendered(http, family, tools=[NOW])


def test_without_tools_the_call_is_text(http: httpx.Client, family: Family) -> None:
    body = {"model": family.name, "messages": HI, "max_tokens": 24, "temperature": 0}
    choice = post(http, "/v1/chat/completions", body)["choices"][0]
    assert choice["message"]["content"] == call_text(family)
    assert choice["finish_reason"] == "stop"


@pytest.mark.parametrize("stream", [False, True])
def test_the_familys_call_is_read(http: httpx.Client, family: Family, stream: bool) -> None:
    body = {"model": family.name, "messages": HI, "max_tokens": 24, "temperature": 0, "tools": [NOW]}
    if stream:
        chunks = post_stream(http, "/v1/chat/completions", {**body, "stream": True}).chunks
        deltas = [c["delta"] for ch in chunks for c in ch["choices"]]
        assert "".join(d.get("content") or "" for d in deltas) == ""
        calls = [call for d in deltas for call in d.get("tool_calls") or ()]
        assert [c["function"]["name"] for c in calls if c.get("id")] == ["now"]
        assert "".join(c["function"].get("arguments") or "" for c in calls) == "{}"
        finish = [c["finish_reason"] for ch in chunks for c in ch["choices"] if c["finish_reason"]]
        assert finish == ["tool_calls"]
        return
    choice = post(http, "/v1/chat/completions", body)["choices"][0]
    assert choice["message"]["content"] is None
    assert [(c["function"]["name"], c["function"]["arguments"]) for c in choice["message"]["tool_calls"]] == [
        ("now", "{}")
    ]
    assert choice["finish_reason"] == "tool_calls"


def test_the_call_and_its_result_go_back(http: httpx.Client, family: Family) -> None:
    call = {"id": "call_8f2a0c", "type": "function", "function": {"name": "now", "arguments": "{}"}}
    messages = [
        *HI,
        {"role": "assistant", "content": None, "tool_calls": [call]},
        {"role": "tool", "tool_call_id": call["id"], "content": "12:00"},
    ]
    prompt = rendered(http, family, messages=messages, tools=[NOW])
    assert "12:00" in prompt and prompt.count("now") >= 2, prompt
