"""`nightloop night --report`: a night as one self-contained HTML file.

Contract: `render` takes the JSON `nightloop night --json` prints, the ids of the night's
practice episodes of each of the user's tasks and the name of the episode report written beside
it (None: none), and returns one HTML document that needs nothing else: CSS inline, the bars
and the learning curve drawn in HTML and inline SVG, no script, no request to anywhere. Text
from the store is escaped (Jinja2's autoescape).
"""

from __future__ import annotations

from importlib import resources

import jinja2

_ENV = jinja2.Environment(autoescape=True, trim_blocks=True, lstrip_blocks=True)
KINDS = {"miniwob": "MiniWoB++", "sites": "the bundled sites", "teacher": "the scripted teacher",
         "replays": "replays of your demonstrations"}
SOURCES = {"demonstrations": "your demonstrations", "demonstration_variants": "their variants",
           "teacher": "the scripted teacher", "verified": "verified successes",
           "replays": "clean replays", "thumbs": "episodes you rated",
           "judged": "episodes the judge approved", "relabelled": "hindsight relabellings",
           "other": "other"}
WIDTH, HEIGHT, PAD = 720, 220, 56          # the learning curve's drawing, in px


def render(data: dict, episodes: dict[str, list[int]], companion: str | None) -> str:
    template = _ENV.from_string(resources.files(__package__).joinpath("night.html.j2")
                                .read_text(encoding="utf-8"))
    night = data["night"]
    practice = night.get("practice") or {}
    return template.render(
        title=f"nightloop: night {night['id']}", data=data, night=night,
        yours=[c for c in data["changes"] if c["yours"]],
        tasks=[c for c in data["changes"] if not c["yours"]],
        practised=[(KINDS.get(k, k), v) for k, v in practice.items() if isinstance(v, dict)],
        mine=practice.get("yours", []), sources=SOURCES, episodes=episodes,
        companion=companion, curve=_curve(data["curve"]))


def _curve(points: list[dict]) -> dict | None:
    """The learning curve's points placed in the drawing (success 0..1 upwards)."""
    if not points:
        return None
    left = PAD + 24                         # clear of the axis' labels
    step = (WIDTH - left - PAD) / max(1, len(points) - 1)
    placed = [{**p, "x": round(left + i * step, 1),
               "y": round(HEIGHT - PAD - p["success"] * (HEIGHT - 2 * PAD), 1)}
              for i, p in enumerate(points)]
    return {"points": placed, "width": WIDTH, "height": HEIGHT, "pad": PAD,
            "line": " ".join(f"{p['x']},{p['y']}" for p in placed),
            "grid": [{"value": v, "y": round(HEIGHT - PAD - v * (HEIGHT - 2 * PAD), 1)}
                     for v in (0, 0.25, 0.5, 0.75, 1)]}
