"""Several models in one server, loaded on demand and unloaded when idle (MODELS_DIR, MODELS_FILE,
KEEP_ALIVE, MODELS_MEMORY_GB), over real HTTP.

Two servers start together with no model loaded at start-up: one with the default models and
tiny random-weight Llama folders (load on demand, shared loads, keep_alive, POST /models/load and
/unload, bad models), one with a memory budget of a model and a half (LRU eviction, a model too
large for the budget).
"""

from __future__ import annotations

import json
import math
import re
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from api_support import API_KEY, SchemaValidator, assert_error, stream_in_background
from server_process import (
    CHAT_MODEL,
    CHAT_MODEL_DIR,
    EMBEDDING_MODEL,
    EMBEDDING_MODEL_DIR,
    ServerProcess,
    launch,
    wait_healthy,
)

from app.registry import keep_alive_seconds, read_models_file

TINY = "tiny-llama"  # in MODELS_FILE, float32 and unquantised: its memory is its tensors' bytes
TINY_B = "tiny-llama-b"


def tiny_llama(folder: Path, seed: int) -> Path:
    """A random-weight Llama folder (2 layers, hidden size 64) with the default model's tokenizer."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    config = LlamaConfig(
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        vocab_size=49152,
        max_position_embeddings=2048,
        tie_word_embeddings=True,
        bos_token_id=1,
        eos_token_id=2,
        pad_token_id=2,
    )
    LlamaForCausalLM(config).save_pretrained(folder)
    AutoTokenizer.from_pretrained(CHAT_MODEL_DIR).save_pretrained(folder)
    return folder


def models_file(path: Path, models: dict[str, Path]) -> Path:
    path.write_text(
        "models:\n"
        + "".join(
            f"  - name: {name}\n    path: {folder}\n    kind: chat\n"
            "    dtype: float32\n    quantization: none\n"
            for name, folder in models.items()
        )
    )
    return path


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerProcess, ServerProcess]]:
    root = tmp_path_factory.mktemp("registry")
    tiny, tiny_b = tiny_llama(root / "tiny", 1), tiny_llama(root / "tiny-b", 2)
    shelf = root / "shelf"  # MODELS_DIR
    shelf.mkdir()
    (shelf / CHAT_MODEL).symlink_to(CHAT_MODEL_DIR)
    (shelf / EMBEDDING_MODEL).symlink_to(EMBEDDING_MODEL_DIR)
    broken = shelf / "broken"  # config.json fine, weights garbage
    broken.mkdir()
    (broken / "config.json").write_text((tiny / "config.json").read_text())
    (broken / "model.safetensors").write_bytes(b"not a safetensors file" * 100)
    alien = shelf / "alien"  # an architecture transformers does not know
    alien.mkdir()
    (alien / "config.json").write_text(
        json.dumps({"architectures": ["AlienForCausalLM"], "model_type": "alien"})
    )
    for folder in (broken, alien):  # the tokenizer loads: the weights or the architecture fail
        for name in ("tokenizer.json", "tokenizer_config.json"):
            (folder / name).write_bytes((tiny / name).read_bytes())
    (shelf / "notes").mkdir()  # no config.json: not a model
    common = {"CHAT_MODEL_PATH": "", "EMBEDDING_MODEL_PATH": "", "KEEP_ALIVE": "-1"}
    main = launch(
        root / "main.log",
        api_key=API_KEY,
        MODELS_DIR=str(shelf),
        MODELS_FILE=str(models_file(root / "models.yaml", {TINY: tiny, TINY_B: tiny_b})),
        **common,
    )
    huge = root / "huge"  # 4 GB of weights on disk (a sparse file), far past the budget below
    huge.mkdir()
    (huge / "config.json").write_text((tiny / "config.json").read_text())
    with (huge / "model.safetensors").open("wb") as f:
        f.truncate(4 * 2**30)
    tight = launch(
        root / "tight.log",
        api_key=API_KEY,
        MODELS_FILE=str(models_file(root / "tight.yaml", {TINY: tiny, TINY_B: tiny_b, "huge": huge})),
        # One tiny model fits, two do not.
        MODELS_MEMORY_GB=f"{1.5 * loaded_bytes(tiny) / 2**30:.6f}",
        **common,
    )
    try:
        wait_healthy([main, tight])
        yield main, tight
    finally:
        with ThreadPoolExecutor(2) as pool:  # each drains its models on its own
            list(pool.map(ServerProcess.stop, (main, tight)))


def loaded_bytes(folder: Path) -> int:
    """The memory the server counts for the model in `folder`, loaded as MODELS_FILE says."""
    import dataclasses

    from app.core.config import Settings
    from app.engine.config import ModelOptions
    from app.engine.loader import load_chat_model
    from app.services import tensor_bytes

    options = ModelOptions.of(Settings(chat_model_path=folder))
    model, _ = load_chat_model(dataclasses.replace(options, dtype="float32", quantization="none"))
    return tensor_bytes(model)


def client(server: ServerProcess) -> httpx.Client:
    return httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {API_KEY}"}, timeout=120)


@pytest.fixture(scope="module")
def http(servers: tuple[ServerProcess, ServerProcess]) -> Iterator[httpx.Client]:
    with client(servers[0]) as c:
        yield c


@pytest.fixture(scope="module")
def tight(servers: tuple[ServerProcess, ServerProcess]) -> Iterator[httpx.Client]:
    with client(servers[1]) as c:
        yield c


def cards(http: httpx.Client) -> dict[str, dict[str, Any]]:
    return {m["id"]: m for m in http.get("/v1/models").json()["data"]}


def chat(model: str, **extra: Any) -> dict[str, Any]:
    return {"model": model, "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 2, **extra}


def wait_state(http: httpx.Client, model: str, state: str, within: float = 10) -> dict[str, Any]:
    deadline = time.monotonic() + within
    while (card := cards(http)[model])["state"] != state:
        assert time.monotonic() < deadline, f"{model} is {card['state']}, not {state}, after {within} s"
        time.sleep(0.1)
    return card


def rss_bytes(server: ServerProcess) -> int:
    status = Path(f"/proc/{server.proc.pid}/status").read_text()
    return int(re.search(r"VmRSS:\s+(\d+) kB", status).group(1)) * 1024  # type: ignore[union-attr]


def test_every_model_is_listed_unloaded_with_its_kind_and_size(
    http: httpx.Client, schemas: SchemaValidator
) -> None:
    body = http.get("/v1/models").json()
    schemas.validate("ListModelsResponse", body)
    models = {m["id"]: m for m in body["data"]}
    assert set(models) == {CHAT_MODEL, EMBEDDING_MODEL, TINY, TINY_B, "broken", "alien"}
    assert models[EMBEDDING_MODEL]["kind"] == "embedding"
    assert models[EMBEDDING_MODEL]["capabilities"] == ["embeddings"]
    assert models[CHAT_MODEL]["kind"] == "chat"
    assert models[CHAT_MODEL]["size_bytes"] == (CHAT_MODEL_DIR / "model.safetensors").stat().st_size
    assert {m["state"] for m in models.values()} == {"unloaded"}
    # Read from the weight files' headers before any load: SmolLM2-135M is named for its count.
    assert 134e6 < models[CHAT_MODEL]["parameters"] < 136e6
    assert models["broken"]["parameters"] is None  # garbage weights: unknown, not an error
    # Known before the load only where the model's own options say (MODELS_FILE here).
    assert models[TINY]["quantization"] == "none" and models[CHAT_MODEL]["quantization"] is None
    one = http.get(f"/v1/models/{TINY}").json()
    schemas.validate("Model", one)
    assert one["state"] == "unloaded"


def test_concurrent_first_requests_share_one_load(
    http: httpx.Client, servers: tuple[ServerProcess, ...]
) -> None:
    with ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(lambda _: http.post("/v1/chat/completions", json=chat(TINY)), range(4)))
    assert [a.status_code for a in answers] == [200] * 4, [a.text for a in answers]
    assert {a.json()["model"] for a in answers} == {TINY}
    card = cards(http)[TINY]
    assert card["state"] == "loaded"
    assert card["max_model_len"] == 2048
    assert card["quantization"] == "none"  # as loaded
    # Every chat model takes tools; SmolLM2's template does not think (test_api_reasoning's does).
    assert "tools" in card["capabilities"] and "reasoning" not in card["capabilities"]
    assert card["memory_bytes"] > 49152 * 64 * 4  # the float32 embedding at least
    # Loaded already: POST /models/load (not streamed) answers its card at once.
    assert http.post("/models/load", json={"model": TINY}).json()["state"] == "loaded"
    log = servers[0].log_path.read_text()
    assert log.count(f"model {TINY} loaded in") == 1, "each request loaded the model again"


def test_keep_alive_0_unloads_after_the_request(http: httpx.Client) -> None:
    resp = http.post("/v1/chat/completions", json=chat(TINY_B, keep_alive=0))
    assert resp.status_code == 200, resp.text
    wait_state(http, TINY_B, "unloaded", within=5)
    # A duration in Ollama's syntax keeps it.
    kept = http.post(
        "/v1/completions", json={"model": TINY_B, "prompt": "a", "max_tokens": 1, "keep_alive": "10m"}
    )
    assert kept.status_code == 200, kept.text
    time.sleep(1)
    assert cards(http)[TINY_B]["state"] == "loaded"
    bad = http.post("/v1/chat/completions", json=chat(TINY_B, keep_alive="soon"))
    assert "keep_alive" in assert_error(bad, 400, param="keep_alive")["message"]


def test_streamed_load_reports_progress_then_unload_frees_memory(
    http: httpx.Client, servers: tuple[ServerProcess, ...]
) -> None:
    events = []
    with http.stream("POST", "/models/load", json={"model": CHAT_MODEL, "stream": True}) as resp:
        assert resp.status_code == 200
        assert resp.headers["content-type"].startswith("text/event-stream")
        for line in resp.iter_lines():
            if line.startswith("data:"):
                events.append(json.loads(line.removeprefix("data:")))
    assert {e["model"] for e in events} == {CHAT_MODEL}
    assert events[-1]["state"] == "loaded" and events[-1]["progress"] == 1
    progress = [e["progress"] for e in events]
    assert progress == sorted(progress), progress
    # The loader's own progress through the weights, not only a start and an end.
    assert any(0 < p < 1 for p in progress), progress
    answer = http.post("/v1/chat/completions", json=chat(CHAT_MODEL))
    assert answer.status_code == 200 and answer.json()["model"] == CHAT_MODEL
    memory = cards(http)[CHAT_MODEL]["memory_bytes"]
    before = rss_bytes(servers[0])
    resp = http.post("/models/unload", json={"model": CHAT_MODEL})
    assert resp.status_code == 200, resp.text
    assert resp.json()["state"] == "unloaded"
    freed = before - rss_bytes(servers[0])
    assert freed > memory / 2, f"unloading freed {freed / 2**20:.0f} MiB of {memory / 2**20:.0f} MiB"


def test_an_embedding_model_loads_on_demand(http: httpx.Client) -> None:
    resp = http.post("/v1/embeddings", json={"model": EMBEDDING_MODEL, "input": "hello"})
    assert resp.status_code == 200, resp.text
    assert len(resp.json()["data"][0]["embedding"]) == 384
    assert_error(http.post("/v1/chat/completions", json=chat(EMBEDDING_MODEL)), 404, code="model_not_found")


@pytest.mark.parametrize(
    ("model", "says"),
    [("broken", "could not be loaded"), ("alien", "alien")],
)
def test_a_model_that_fails_to_load_is_a_clear_503_and_disturbs_no_stream(
    http: httpx.Client, base_url_main: str, model: str, says: str
) -> None:
    long_answer = chat(TINY, max_tokens=200, ignore_eos=True, stream=True)
    with stream_in_background(
        base_url_main,
        "/v1/chat/completions",
        long_answer,
        started_within=60,
        timeout=120,
        headers=http.headers,
    ) as worker:
        error = assert_error(
            http.post("/v1/chat/completions", json=chat(model)), 503, code="model_load_failed"
        )
        assert model in error["message"] and says in error["message"]
        assert "/models/load" in error["message"]  # what to do once it is fixed
        assert worker.is_alive(), "the running stream ended when another model failed to load"
    card = cards(http)[model]
    assert card["state"] == "failed" and says in card["error"]
    # Asked again, at once: the same answer without another try.
    assert_error(http.post("/v1/chat/completions", json=chat(model)), 503, code="model_load_failed")
    streamed = http.post("/models/load", json={"model": model, "stream": True}).text
    last = json.loads([line for line in streamed.splitlines() if line.startswith("data:")][-1][5:])
    assert last["state"] == "failed" and says in last["error"]


@pytest.fixture(scope="module")
def base_url_main(servers: tuple[ServerProcess, ServerProcess]) -> str:
    return servers[0].url


def test_unknown_models_and_missing_keys(http: httpx.Client, servers: tuple[ServerProcess, ...]) -> None:
    for resp in (
        http.post("/v1/chat/completions", json=chat("nope")),
        http.post("/models/load", json={"model": "nope"}),
        http.post("/models/unload", json={"model": "nope"}),
        http.get("/v1/models/nope"),
    ):
        error = assert_error(resp, 404, code="model_not_found")
        assert TINY in error["message"], "the error lists the models served"
    assert httpx.post(f"{servers[0].url}/models/load", json={"model": TINY}).status_code == 401
    assert_error(http.post("/models/load", json={}), 400, param="model")


def test_metrics_carry_the_model(http: httpx.Client) -> None:
    http.post("/v1/chat/completions", json=chat(TINY))
    text = http.get("/metrics").text
    assert re.search(rf'llm_generation_tokens_total{{model="{TINY}"}} [1-9]', text)
    assert f'llm_model_loaded{{model="{TINY}"}} 1.0' in text
    assert 'llm_model_loaded{model="broken"} 0.0' in text
    assert f'llm_running_sequences{{model="{TINY}"}}' in text


def test_the_least_recently_used_idle_model_makes_room(tight: httpx.Client) -> None:
    assert tight.post("/v1/chat/completions", json=chat(TINY)).status_code == 200
    assert tight.post("/v1/chat/completions", json=chat(TINY_B)).status_code == 200
    models = cards(tight)
    assert (models[TINY]["state"], models[TINY_B]["state"]) == ("unloaded", "loaded")
    assert tight.post("/v1/chat/completions", json=chat(TINY)).status_code == 200
    models = cards(tight)
    assert (models[TINY]["state"], models[TINY_B]["state"]) == ("loaded", "unloaded")


def test_a_model_larger_than_the_budget_names_what_it_needs(tight: httpx.Client) -> None:
    error = assert_error(tight.post("/v1/chat/completions", json=chat("huge")), 503, code="model_load_failed")
    assert "'huge' needs about 4.00 GiB" in error["message"]
    assert "GiB (MODELS_MEMORY_GB): raise the budget" in error["message"]
    # Nothing was unloaded for it.
    assert cards(tight)[TINY]["state"] == "loaded"


def test_a_busy_model_is_not_evicted(
    tight: httpx.Client, servers: tuple[ServerProcess, ServerProcess]
) -> None:
    long_answer = chat(TINY, max_tokens=200, ignore_eos=True, stream=True)
    with stream_in_background(
        servers[1].url,
        "/v1/chat/completions",
        long_answer,
        started_within=60,
        timeout=120,
        headers=tight.headers,
    ):
        error = assert_error(
            tight.post("/v1/chat/completions", json=chat(TINY_B)), 503, code="model_memory_full"
        )
        assert TINY in error["message"]


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("5m", 300.0),
        ("1h30m", 5400.0),
        ("90", 90.0),
        (0, 0.0),
        ("0", 0.0),
        (2.5, 2.5),
        (-1, None),
        ("-1", None),
        (10**400, math.inf),  # JSON's integers have no bound
        (-(10**400), None),
    ],
)
def test_keep_alive_reads_ollamas_durations(value: str | float, seconds: float | None) -> None:
    assert keep_alive_seconds(value) == seconds


@pytest.mark.parametrize("value", ["soon", "5 minutes", "nan", "", "5x"])
def test_keep_alive_refuses_what_is_no_duration(value: str) -> None:
    with pytest.raises(ValueError, match="is not a duration"):
        keep_alive_seconds(value)


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("- {name: a}", "needs a `name` and a `path`"),
        ("- {name: a, path: x, quantisation: int4}", "unknown keys ['quantisation']"),
        ("- {name: a, path: x, kind: vision}", "kind must be chat or embedding"),
        ("name: a", "must hold a list"),
    ],
)
def test_a_wrong_models_file_says_what_to_fix(tmp_path: Path, text: str, says: str) -> None:
    path = tmp_path / "models.yaml"
    path.write_text(text)
    with pytest.raises(ValueError, match=re.escape(says)):
        read_models_file(path, None)
