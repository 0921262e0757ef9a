"""The settings references of the docs, generated from the dataclasses that define them.

Run by mkdocs-gen-files while `mkdocs build` runs (mkdocs.yml): `Settings` becomes
reference/settings.md and `TrainConfig` reference/training.md, so a field's default, bounds and
help text in the docs are the code's own and cannot go stale. `markdown(cls)` is importable on
its own (tests/test_docs.py).
"""

from __future__ import annotations

import dataclasses

INTRO = {
    "Settings": """\
# Settings

One TOML file, `$XDG_CONFIG_HOME/nightloop/config.toml`; every key can also be set with an
environment variable `NIGHTLOOP_<KEY>` (upper case) and a flag `--<key>` of `nightloop daemon`
(dashes for underscores), in rising precedence. `nightloop config show` prints the effective
values and where each came from; a bad value is an error naming its source.

```toml
# config.toml
temperature = 0.25
approvals = "deny"
train_at = "03:00"
```
""",
    "TrainConfig": """\
# Training settings

The learning cycle's hyperparameters (`trainer/config.py`). `nightloop train --config-help`
lists them; `nightloop train --now --config FILE.toml` overrides any of them for one cycle, and
an unknown key, a wrong type or a value out of range is an error naming the file. Each saved
training state holds the config it was trained with.
""",
}


def _default(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, tuple):
        return "[" + ", ".join(f'"{v}"' for v in value) + "]"
    return repr(value)


def _number(x: float) -> str:
    return f"{int(x):,}" if float(x).is_integer() else f"{x:g}"


def _allowed(meta: dict) -> str:
    low, high = meta.get("low"), meta.get("high")
    if meta.get("choices"):
        return ", ".join(f"`{c}`" for c in meta["choices"])
    if low is not None and high is not None:
        return f"{_number(low)} … {_number(high)}"
    if low is not None:
        return f"≥ {_number(low)}"
    return "" if high is None else f"≤ {_number(high)}"


def markdown(cls: type) -> str:
    """A page for the dataclass `cls`: its intro, then one row per field (key, default, what
    it may be, what it does)."""
    rows = ["| key | default | allowed | what it does |", "|---|---|---|---|"]
    for spec in dataclasses.fields(cls):
        help_text = spec.metadata.get("help", "").replace("|", "\\|").replace("\n", " ")
        rows.append(f"| `{spec.name}` | `{_default(spec.default)}` | {_allowed(spec.metadata)} "
                    f"| {help_text} |")
    return INTRO[cls.__name__] + "\n" + "\n".join(rows) + "\n"


def main() -> None:
    import mkdocs_gen_files

    from daemon.core.settings import Settings
    from trainer.config import TrainConfig
    for cls, page in ((Settings, "reference/settings.md"), (TrainConfig, "reference/training.md")):
        with mkdocs_gen_files.open(page, "w") as f:
            f.write(markdown(cls))


if __name__ in ("__main__", "<run_path>"):
    main()
