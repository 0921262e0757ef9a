"""More SFT examples from one demonstration: the same steps with other values and other ids.

- Its values (daemon/agent/values.py: what it typed, chose or clicked by a name its task says)
  take fresh texts of the same shape — a name another name, a date another date, an order
  number other digits — everywhere the episode holds them: the task, the actions, the targets
  and the recorded pages (a product renamed in the list as in the task), so each example stays
  consistent and the model learns to copy the task's values, not to remember them.
- Its element ids are renumbered by one permutation over the whole episode (ids stay what they
  were to each other, as on a page; the model must read them, not remember them).

The words come from a list of their own, not from any site's data, so that no value a test
draws is learnt here.
"""

from __future__ import annotations

import dataclasses
import random
import re

from daemon.agent.values import substitute, template_of, values_of
from daemon.core.store import Episode, Step

_WORDS = ("apple", "river", "garden", "window", "silver", "morning", "paper", "yellow", "stone",
          "harbor", "candle", "forest", "pocket", "ladder", "meadow", "orange", "pillow",
          "rocket", "saddle", "tunnel", "violet", "wagon", "basket", "cotton", "dinner",
          "engine", "feather", "guitar", "island", "jacket", "kettle", "lemon", "marble",
          "needle", "ocean", "pepper", "quarter", "ribbon", "sugar", "tiger", "velvet",
          "walnut", "anchor", "bridge", "castle", "desert", "falcon", "glacier", "hammer")
_NAMES = ("Olivia", "Mateo", "Priya", "Jonas", "Amara", "Felix", "Noor", "Tomas", "Ingrid",
          "Kofi", "Lucia", "Ravi", "Sofia", "Emil", "Yara", "Bruno", "Mei", "Anton", "Zara",
          "Henrik", "Carmen", "Idris", "Elena", "Oskar", "Maya", "Stellan", "Rosa", "Hugo")
_TOKEN = re.compile(r"\d+|[^\W\d_]+|[\W_]+")


def fresh_value(value: str, rng: random.Random) -> str:
    """A new text of `value`'s shape: dates and times stay valid, digits stay digits (as
    many), words keep their case (capitalised ones become names)."""
    if re.fullmatch(r"\d{4}-\d\d-\d\d", value):
        return f"{value[:4]}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
    if re.fullmatch(r"\d\d:\d\d", value):
        return f"{rng.randint(0, 23):02d}:{rng.choice((0, 15, 30, 45)):02d}"
    out = []
    for token in _TOKEN.findall(value):
        if token.isdigit():
            digits = [str(rng.randint(0, 9)) for _ in token]
            if token[0] != "0" and len(token) > 1:
                digits[0] = str(rng.randint(1, 9))
            out.append("".join(digits) if len(token) > 1 else str(rng.randint(1, 9)))
        elif token.isalpha() and len(token) == 1:
            letter = chr(rng.randint(ord("a"), ord("z")))
            out.append(letter.upper() if token.isupper() else letter)
        elif token.isalpha():
            word = rng.choice(_NAMES if token[0].isupper() else _WORDS)
            out.append(word.upper() if token.isupper() and len(token) > 1 else
                       word.capitalize() if token[0].isupper() else word.lower())
        else:
            out.append(token)
    return "".join(out)


def renumbered(steps: list[Step], rng: random.Random) -> list[Step]:
    """`steps` with every element id mapped through one random permutation."""
    ids = sorted({e["id"] for s in steps for e in (s.observation or {}).get("elements", [])}
                 | {s.action["id"] for s in steps if s.action and "id" in s.action})
    new = dict(zip(ids, rng.sample(range(1, 2 * len(ids) + 50), len(ids))))

    def page(observation: dict | None) -> dict | None:
        if observation is None:
            return None
        return {**observation, "elements": [{**e, "id": new[e["id"]]}
                                            for e in observation.get("elements", [])]}
    return [dataclasses.replace(
        s, observation=page(s.observation),
        action={**s.action, "id": new[s.action["id"]]} if s.action and "id" in s.action
        else s.action) for s in steps]


def variants(episode: Episode, steps: list[Step], count: int,
             seed: int = 0) -> list[tuple[Episode, list[Step]]]:
    """`count` variants of a demonstration: fresh values (where it has any) and fresh ids;
    the same for the same episode and seed."""
    rng = random.Random(f"{episode.id}:{seed}")
    values = values_of(steps, episode.task)
    template = template_of(episode.task, values)
    out = []
    for _ in range(count):
        fresh = {v: fresh_value(v, rng) for v in values}
        out.append((dataclasses.replace(episode, task=template.fill(fresh)),
                    renumbered(substitute(steps, fresh), rng)))
    return out
