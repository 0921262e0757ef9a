"""`nightloop config` and `nightloop models`: effective settings, and the models to use."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable

import click

from daemon.core import models
from daemon.core.errors import NightloopError
from daemon.core.settings import FIELDS, Settings, config_file, load_settings

from .common import json_option, print_json, setting_options, settings_from


@click.group("config")
def config_group() -> None:
    """Show the effective settings and where each comes from."""


@config_group.command("show")
@setting_options(*FIELDS)
@json_option
def config_show(as_json: bool, **flags: Any) -> None:
    """Print every setting, its effective value and its source.

    Sources, lowest first: default, config.toml, NIGHTLOOP_* environment variables, flags.

    Example: nightloop config show --temperature 0.5
    """
    resolved = load_settings(flags)
    rows = {name: {"value": getattr(resolved.settings, name), "source": resolved.sources[name],
                   "help": FIELDS[name].metadata["help"]} for name in FIELDS}
    if as_json:
        print_json({"config_file": str(config_file()), "settings": rows})
        return
    exists = "" if config_file().exists() else " (not created; defaults apply)"
    click.echo(f"config file: {config_file()}{exists}")
    width = max(map(len, FIELDS))
    for name, row in rows.items():
        value = row["value"]
        if isinstance(value, (str, tuple)):     # as TOML writes them
            value = json.dumps(list(value) if isinstance(value, tuple) else value,
                               ensure_ascii=False)
        click.echo(f"{name:<{width}} = {value!s:<12}  # {row['source']}")


@click.group("models")
def models_group() -> None:
    """List the models nightloop can use, and add your own GGUF files."""


def _model_rows(settings: Settings) -> list[dict]:
    rows, seen = [], set()

    def add(source: str, path: Path | str, check: Callable) -> None:
        try:
            info = check(path)
        except NightloopError as exc:
            rows.append({"source": source, "path": str(path), "error": str(exc)})
            return
        if (source, info.path) in seen:
            return
        seen.add((source, info.path))
        rows.append({"source": source, "path": str(info.path), "kind": info.kind,
                     "name": info.name, "architecture": info.architecture,
                     "quantization": info.quantization, "size_bytes": info.size_bytes,
                     "chat_template": info.chat_template,
                     "context_length": info.context_length})

    for package, relative in models.SHIPPED:
        try:
            add("shipped", models.shipped_model(package, relative), models.check_model)
        except NightloopError as exc:
            rows.append({"source": "shipped", "path": relative, "error": str(exc)})
    if settings.model:
        add("config: model", settings.model, models.check_model)
    if settings.adapter_file:
        add("config: adapter", settings.adapter_file, models.check_adapter)
    for path in models.registered():
        add("added", path, models.check_model)
    return rows


@models_group.command("list")
@json_option
def models_list(as_json: bool) -> None:
    """List shipped, configured and added models with what they are.

    Example: nightloop models list --json
    """
    rows = _model_rows(settings_from())
    if as_json:
        print_json(rows)
        return
    for row in rows:
        if "error" in row:
            click.echo(f"{row['source']:<16} {row['path']}\n{'':<16} unusable: {row['error']}")
            continue
        template = "chat template" if row["chat_template"] else "no chat template"
        click.echo(f"{row['source']:<16} {row['name']}: {row['architecture']}, "
                   f"{row['quantization']}, {row['size_bytes'] / 1e6:.0f} MB, {template}\n"
                   f"{'':<16} {row['path']}")


@models_group.command("add")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
def models_add(path: Path) -> None:
    """Check a GGUF model file and add it to the list.

    To make it the policy's model, set `model` in config.toml or pass --model to the daemon.

    Example: nightloop models add ~/models/qwen2.5-0.5b-instruct-q4_k_m.gguf
    """
    info = models.register(path)
    click.echo(f"added {info.describe()}\n  {info.path}")
    if not info.chat_template:
        click.echo("note: it has no chat template, so prompts use a plain layout; "
                   "instruction-tuned models with a template follow them better")
