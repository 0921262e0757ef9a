"""Varied synthetic observations, as the content script would report them, from a seeded RNG:
every element kind, empty pages, huge pages, long and odd names, values and page text."""

from __future__ import annotations

import random

WORDS = ("order invoice customer search filter report shipping payment profile settings inbox "
         "flight hotel price total status archived export details summary region product "
         "quantity discount coupon address city country Zürich naïve 東京 \"quoted\" it's "
         "back\\slash {braces} [brackets] <tag>").split()
KINDS = [
    {"tag": "button", "role": "button"},
    {"tag": "a", "role": "link"},
    {"tag": "input", "role": "textbox", "type": "text", "editable": True},
    {"tag": "input", "role": "textbox", "type": "password", "editable": True},
    {"tag": "input", "role": "checkbox", "type": "checkbox"},
    {"tag": "input", "role": "radio", "type": "radio"},
    {"tag": "select", "role": "combobox"},
    {"tag": "textarea", "role": "textbox", "editable": True},
    {"tag": "div", "role": "textbox", "editable": True},
    {"tag": "h2", "role": "heading"},
    {"tag": "img", "role": "img"},
    {"tag": "div", "role": "tab"},
]
TASKS = [
    "Click the Submit button",
    "Type 'Lisbon' into the city field and press Enter",
    "Select Blue from the colour list",
    "What is the total price? Answer with the number.",
    "Check the box that says remember me",
    "Go back to the previous page",
    "Open https://example.com/help",
    "Scroll down to the bottom of the page",
    "Log in as ada with the password hunter2",
    "Find the flight to Zürich and book it, then say done",
]


def words(rng: random.Random, n: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n))


def observation(seed: int, n_elements: int) -> dict:
    rng = random.Random(seed)
    ids = rng.sample(range(1, n_elements * 5 + 10), n_elements)
    elements = []
    for element_id in sorted(ids):
        e = {"id": element_id, **rng.choice(KINDS), "name": words(rng, rng.randint(0, 6)),
             "in_view": rng.random() < 0.6}
        if e.get("editable"):
            e["value"] = "•••" if e.get("type") == "password" else words(rng, rng.randint(0, 4))
        if e["role"] in ("checkbox", "radio"):
            e["checked"] = rng.random() < 0.5
        if e["tag"] == "select":
            e["options"] = [words(rng, 2) for _ in range(rng.randint(1, 8))]
            e["selected"] = e["options"][0]
        if rng.random() < 0.05:
            e["disabled"] = True
        if rng.random() < 0.1:
            e["frame"] = rng.choice(["iframe", "shadow"])
        elements.append(e)
    text = words(rng, rng.randint(0, 400))
    return {"url": f"http://127.0.0.1:8000/page{seed}.html?q={words(rng, 1)}",
            "title": words(rng, 3), "elements": elements, "text": text,
            "omitted_elements": rng.choice([0, 0, 12]), "omitted_text": 0}


def observations(count: int, seed: int = 0) -> list[dict]:
    """`count` observations from empty pages to pages of several hundred elements."""
    rng = random.Random(seed)
    sizes = [0, 1, 400] + [rng.choice([2, 5, 10, 20, 40, 80, 150]) for _ in range(count - 3)]
    return [observation(seed * 1000 + i, n) for i, n in enumerate(sizes[:count])]
