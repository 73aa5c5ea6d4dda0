"""`python -m app.pull owner/repo[:file.gguf]` (`make pull MODEL=...`): download a model into models/.

For machines with internet access (or a Hub mirror named by HF_ENDPOINT). `owner/repo` fetches a
Transformers folder (its top-level config, tokenizer and weight files, never the `original/` or
ONNX copies beside them) into `models/<repo>`; `owner/repo:file.gguf` fetches one GGUF file into
`models/`, and `owner/repo:Q4_K_M` the repository's one GGUF file of that quantisation, as
llama.cpp's `-hf` does. huggingface_hub does the work: progress bars, resuming an interrupted
download where it stopped, HF_TOKEN for gated models. Either way the result is what CHAT_MODEL_PATH
(or MODELS_DIR) takes.
"""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import dataclass
from pathlib import Path

# The Makefile keeps the server offline; pulling is the one step that goes out.
os.environ["HF_HUB_OFFLINE"] = "0"

from huggingface_hub import HfApi, hf_hub_download, snapshot_download
from huggingface_hub.errors import (
    EntryNotFoundError,
    GatedRepoError,
    HfHubHTTPError,
    HTTPError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)

# What Transformers reads from a model folder; weights as .bin only where there are no safetensors.
FOLDER_FILES = (".json", ".safetensors", ".jinja", ".model", ".tiktoken", ".txt")


class PullError(Exception):
    """What went wrong, said so that a person knows what to do."""


@dataclass(frozen=True)
class ModelRef:
    repo_id: str
    file: str | None  # a .gguf file name, or a quantisation tag such as Q4_K_M
    revision: str | None

    @classmethod
    def parse(cls, text: str) -> ModelRef:
        rest, _, revision = text.partition("@")
        repo_id, _, file = rest.partition(":")
        if repo_id.count("/") != 1 or not all(repo_id.split("/")):
            raise PullError(
                f"{text!r} is not a model name: use owner/repo (a Transformers folder), "
                "owner/repo:file.gguf or owner/repo:Q4_K_M (one GGUF file), optionally @revision."
            )
        return cls(repo_id, file or None, revision or None)


def folder_files(files: list[str]) -> list[str]:
    """The files of a Transformers folder worth fetching: top level only."""
    top = [f for f in files if "/" not in f]
    chosen = [f for f in top if f.endswith(FOLDER_FILES)]
    if not any(f.endswith(".safetensors") for f in chosen):
        chosen += [f for f in top if f.endswith(".bin")]
    if "config.json" not in chosen:
        raise PullError("it has no config.json at its top level, so it is not a Transformers model folder")
    return sorted(chosen)


def gguf_file(files: list[str], wanted: str) -> str:
    """The GGUF file named, or the one whose name carries the quantisation tag."""
    ggufs = sorted(f for f in files if f.endswith(".gguf"))
    if wanted.endswith(".gguf"):
        if wanted in ggufs:
            return wanted
        raise PullError(f"it has no file {wanted!r}; its GGUF files: {', '.join(ggufs) or 'none'}")
    tagged = [f for f in ggufs if wanted.lower() in Path(f).name.lower()]
    if len(tagged) == 1:
        return tagged[0]
    if not tagged:
        raise PullError(f"none of its GGUF files is {wanted}; they are: {', '.join(ggufs) or 'none'}")
    raise PullError(f"{len(tagged)} of its GGUF files match {wanted}: {', '.join(tagged)}; name one")


def pull(ref: ModelRef, models_dir: Path) -> Path:
    api = HfApi()
    try:
        files = api.list_repo_files(ref.repo_id, revision=ref.revision)
        if ref.file is None:
            dest = models_dir / ref.repo_id.split("/")[1]
            snapshot_download(
                ref.repo_id, revision=ref.revision, local_dir=dest, allow_patterns=folder_files(files)
            )
            return dest
        name = gguf_file(files, ref.file)
        return Path(hf_hub_download(ref.repo_id, name, revision=ref.revision, local_dir=models_dir))
    except GatedRepoError as exc:
        raise PullError(
            "it is gated: accept its licence on its Hub page, then set HF_TOKEN to a token of that account"
        ) from exc
    except RepositoryNotFoundError as exc:
        raise PullError("the Hub has no such repository (or it is private: set HF_TOKEN)") from exc
    except RevisionNotFoundError as exc:
        raise PullError(f"it has no revision {ref.revision!r}") from exc
    except EntryNotFoundError as exc:
        raise PullError(f"a file vanished while downloading ({exc}); run the same command again") from exc
    except HfHubHTTPError as exc:
        raise PullError(f"the Hub answered {exc.response.status_code}; try again later") from exc
    except HTTPError as exc:
        raise PullError(
            f"the Hub cannot be reached ({type(exc).__name__}: {exc}). Without internet access, copy a "
            "model folder or GGUF file into the models folder by hand, or set HF_ENDPOINT to a mirror; "
            "rerunning resumes a download where it stopped."
        ) from exc
    except OSError as exc:
        raise PullError(f"{exc}; once that is fixed, rerunning resumes where it stopped") from exc


def size_of(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file() and ".cache" not in f.parts)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "model", help="owner/repo, owner/repo:file.gguf or owner/repo:Q4_K_M, optionally @revision"
    )
    parser.add_argument("--models-dir", type=Path, default=Path("models"))
    args = parser.parse_args(argv)
    try:
        ref = ModelRef.parse(args.model)
        args.models_dir.mkdir(parents=True, exist_ok=True)
        path = pull(ref, args.models_dir)
    except PullError as exc:
        print(f"could not pull {args.model}: {exc}", file=sys.stderr)
        return 1
    print(f"ready: {path} ({size_of(path) / 1e6:,.0f} MB)")
    print(f"serve it alone: CHAT_MODEL_PATH={path} make run")
    print(f"or beside the others in {args.models_dir}: MODELS_DIR={args.models_dir} make run")
    return 0


if __name__ == "__main__":
    sys.exit(main())
