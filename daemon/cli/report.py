"""`nightloop episodes report`: episodes as one self-contained HTML file.

Contract: `render` takes episodes as `episodes show --json` gives them (with steps and rewards)
and the store's screenshot folder, and returns one HTML document that needs nothing else: CSS
inline, each step's screenshot inlined as a data: URL with the acted-on element outlined, no
script, no request to anywhere. Text from the store is escaped (Jinja2's autoescape); secrets
were masked before they were stored, and screenshots were painted over before they were taken.
"""

from __future__ import annotations

import base64
from datetime import datetime
from importlib import resources
from typing import Any

import jinja2

from daemon.agent.descriptors import in_words, label
from daemon.core.screenshots import Screenshots
from judge.reward import explain

# Fields the store left empty are missing from the JSON form: Jinja2's default Undefined reads
# them as empty.
_ENV = jinja2.Environment(autoescape=True, trim_blocks=True, lstrip_blocks=True)


def render(episodes: list[dict], screenshots: Screenshots, *, title: str | None = None) -> str:
    """The report of `episodes` (an index first when there are several)."""
    template = _ENV.from_string(resources.files(__package__).joinpath("report.html.j2")
                                .read_text(encoding="utf-8"))
    shown = [_episode(e, screenshots) for e in episodes]
    if title is None:
        title = f"nightloop episode {episodes[0]['id']}" if len(episodes) == 1 else \
            f"nightloop: {len(episodes)} episodes"
    return template.render(title=title, episodes=shown)


def _episode(data: dict, screenshots: Screenshots) -> dict[str, Any]:
    rewards = [_reward(r) for r in data.get("rewards", [])]
    return {**data, "steps": [_step(s, screenshots) for s in data.get("steps", [])],
            "rewards": rewards, "seconds": _seconds(data.get("started_at"), data.get("ended_at"))}


def _step(step: dict, screenshots: Screenshots) -> dict[str, Any]:
    target = step.get("target") or _element(step)
    shot = step.get("screenshot") or {}
    image = screenshots.read(shot["file"]) if "file" in shot else None
    return {
        **step, "words": in_words(step.get("action"), target),
        "target_label": label(target) if target else None,
        "image": "data:image/jpeg;base64," + base64.b64encode(image).decode() if image else None,
        "outline": _outline(shot) if image else None,
        "no_image": None if image else shot.get("skipped") or
        ("its file is gone" if "file" in shot else "no screenshot was taken"),
        "approval": (step.get("result") or {}).get("approval"),
        "timings": ", ".join(f"{name} {step[key]:.0f} ms" for name, key in (
            ("observe", "observe_ms"), ("policy", "policy_ms"), ("act", "act_ms"))
            if step.get(key) is not None),
    }


def _element(step: dict) -> dict | None:
    """The acted-on element from the step's page, when no descriptor was stored (an invalid
    step, a step that never reached the browser)."""
    element_id = (step.get("action") or {}).get("id")
    for element in (step.get("observation") or {}).get("elements", []):
        if element.get("id") == element_id:
            return element
    return None


def _outline(shot: dict) -> dict[str, float] | None:
    """The target's box as percentages of the image, so it scales with it."""
    box, width, height = shot.get("box"), shot.get("width"), shot.get("height")
    if not box or not width or not height:
        return None
    x, y, w, h = box
    return {"left": 100 * x / width, "top": 100 * y / height,
            "width": 100 * w / width, "height": 100 * h / height}


def _reward(reward: dict) -> dict[str, Any]:
    """A reward with the lines that explain it."""
    details = reward.get("details") or {}
    lines: list[str] = []
    if reward["kind"] == "judge":
        flip = details.get("flip") or {}
        if explain(details):
            lines.append(explain(details))
        if flip.get("inferred"):
            lines.append(f"what the judge thinks was asked: “{flip['inferred'][0]}”")
        if flip.get("model"):
            lines.append(f"FLIP: {flip.get('form')} form, {flip['model']}")
        counts = (details.get("rules") or {}).get("counts") or {}
        if counts:
            lines.append("progress rules: " + ", ".join(
                f"{name.replace('_', ' ')} ×{n}" for name, n in counts.items() if n))
    elif reward["kind"] == "ground_truth":
        lines += [f"{k}: {details[k]}" for k in ("benchmark", "task", "seed", "raw_reward",
                                                 "reason") if details.get(k) is not None]
    elif reward["kind"] == "user":
        lines += [f"by {details.get('client', 'the user')}"]
        if details.get("note"):
            lines.append(f"note: {details['note']}")
    return {**reward, "lines": lines}


def _seconds(started: str | None, ended: str | None) -> float | None:
    if not started or not ended:
        return None
    return round((datetime.fromisoformat(ended) - datetime.fromisoformat(started))
                 .total_seconds(), 1)
