"""Task templates of the bundled sites: for a seed, a task in words, its values, the script a
careful person would follow, and the state the site must end in.

A template draws from its site's world (`worlds.world`), so the values change with the seed and
always exist on the site. `SiteTask.script` is written in the scripted policy's instruction
language (it proves each template solvable through the real extension); `expect` is the ground
truth: the part of the site's recorded state (the ``sites.state`` probe) that must equal it when
the episode ends, whatever the agent did on the way.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from daemon.core.errors import UsageError

from .worlds import CITIES, FIRST, LANGUAGES, LAST, person, world


@dataclass(frozen=True)
class SiteTask:
    template: str                   # "shop.buy"
    seed: int
    task: str                       # what the user asks, in words
    start: str                      # the page it starts on, relative to the sites' base URL
    values: dict[str, str]          # the values the task names (they change with the seed)
    script: str                     # a solution, one instruction per step
    expect: dict[str, Any] = field(default_factory=dict)

    @property
    def site(self) -> str:
        return self.template.split(".", 1)[0]

    def url(self, base_url: str) -> str:
        return f"{base_url}/{self.start}{'&' if '?' in self.start else '?'}seed={self.seed}"

    def check(self, state: dict[str, Any]) -> tuple[bool, str]:
        """Whether the site's recorded `state` is what the task asked for, and why not."""
        for key, want in self.expect.items():
            got = _tidy(state.get(key))
            if got != _tidy(want):
                return False, f"{key} is {got!r}, the task wants {want!r}"
        return True, "the site is in the state the task asked for"


Draft = tuple[str, dict[str, str], list[str], dict[str, Any]]   # task, values, script, expect


def _tidy(value: Any) -> Any:
    """Whitespace-insensitive, as a person reading the page would compare."""
    if isinstance(value, str):
        return " ".join(value.split())
    if isinstance(value, list):
        return [_tidy(v) for v in value]
    if isinstance(value, dict):
        return {k: _tidy(v) for k, v in value.items()}
    return value


def _add_to_cart(w: dict, rng: random.Random) -> tuple[dict, str, list[str]]:
    product = rng.choice(w["products"])
    qty = str(rng.randint(2, 5))
    steps = [f'fill "Search" with "{product["name"]}"', 'click "Search"',
             f'click "{product["name"]}"', f'fill "Quantity" with "{qty}"', 'click "Add to cart"']
    return product, qty, steps


def shop_add(w: dict, rng: random.Random) -> Draft:
    product, qty, steps = _add_to_cart(w, rng)
    return (f"Add {product['name']} to the cart, quantity {qty}",
            {"product": product["name"], "quantity": qty}, steps,
            {"cart": [{"name": product["name"], "qty": int(qty)}]})


def shop_buy(w: dict, rng: random.Random) -> Draft:
    product, qty, steps = _add_to_cart(w, rng)
    card = rng.choice(w["cards"])
    steps += ['click "Cart"', 'click "Checkout"', f'select "{card}" from "Payment card"',
              'click "Place order"']
    return (f"Buy {product['name']}, quantity {qty}, and pay with the {card}",
            {"product": product["name"], "quantity": qty, "card": card}, steps,
            {"orders": [{"items": [{"name": product["name"], "qty": int(qty)}], "card": card}]})


_QUESTIONS = ("Where is my parcel", "Please refund the second item", "The invoice shows the "
              "wrong address", "I cannot log in since Monday", "Can I change the size",
              "The box arrived damaged")


def contact_ask(w: dict, rng: random.Random) -> Draft:
    topic, message = rng.choice(w["topics"]), rng.choice(_QUESTIONS)
    first, last = rng.choice(FIRST), rng.choice(LAST)
    name, email = f"{first} {last}", f"{first.lower()}.{last.lower()}@example.test"
    order = f"A-{rng.randrange(10**5, 10**6)}"
    steps = [f'fill "Your name" with "{name}"', f'fill "Email" with "{email}"',
             f'select "{topic}" from "Topic"', f'fill "Order number" with "{order}"',
             f'fill "Message" with "{message}"', 'click "Send me a copy"', 'click "Send"']
    return (f'Write to support about {topic} for order {order}: "{message}". '
            f"Sign as {name}, {email}, and ask for a copy",
            {"topic": topic, "order": order, "message": message, "name": name, "email": email},
            steps, {"sent": [{"name": name, "email": email, "topic": topic, "order": order,
                              "message": message, "copy": True, "newsletter": False}]})


def booking_trip(w: dict, rng: random.Random) -> Draft:
    origin, destination = rng.sample(w["cities"], 2)
    trip = rng.choice(w["trips"])
    date = f"2027-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
    passengers, lead = str(rng.randint(1, 4)), person(rng)
    steps = [f'select "{origin}" from "From"', f'select "{destination}" from "To"',
             f'fill "Date" with "{date}"', f'fill "Passengers" with "{passengers}"',
             'click "Search trains"', f'click "Choose {trip["time"]}"',
             f'fill "Lead passenger" with "{lead}"', 'click "Confirm booking"']
    return (f"Book the {trip['time']} train from {origin} to {destination} on {date} for "
            f"{passengers} passengers, lead passenger {lead}",
            {"time": trip["time"], "from": origin, "to": destination, "date": date,
             "passengers": passengers, "lead": lead}, steps,
            {"bookings": [{"from": origin, "to": destination, "date": date, "time": trip["time"],
                           "passengers": int(passengers), "lead": lead}]})


_REPLIES = ("Thanks, I will be there", "Sounds good to me", "Got it, thank you",
            "Can we move it to Monday", "I will send it by Friday", "Please call me")


def _row(message: dict) -> str:
    return f"{message['from']} — {message['subject']}"


def inbox_reply(w: dict, rng: random.Random) -> Draft:
    message, text = rng.choice(w["messages"]), rng.choice(_REPLIES)
    steps = [f'click "{_row(message)}"', 'click "Reply"', f'fill "Message" with "{text}"',
             'click "Send"']
    return (f'Reply to {message["from"]} about "{message["subject"]}" with "{text}"',
            {"sender": message["from"], "subject": message["subject"], "text": text}, steps,
            {"sent": [{"to": message["from"], "subject": f"Re: {message['subject']}",
                       "body": text}]})


def inbox_archive(w: dict, rng: random.Random) -> Draft:
    wrote = {}
    for message in w["messages"]:
        wrote.setdefault(message["from"], []).append(message)
    sender = rng.choice(sorted(s for s, ms in wrote.items() if len(ms) > 1))
    steps = [s for m in wrote[sender] for s in (f'click "{_row(m)}"', 'click "Archive"')]
    return (f"Archive every message from {sender}", {"sender": sender}, steps,
            {"archived": sorted(m["id"] for m in wrote[sender])})


def settings_update(w: dict, rng: random.Random) -> Draft:
    profile, prefs = dict(w["profile"]), dict(w["preferences"])
    field_ = rng.choice(("phone", "city", "language"))
    if field_ == "phone":
        value = f"+351 9{rng.randrange(10**7, 10**8)}"
        first = f'fill "Phone" with "{value}"'
    elif field_ == "city":
        value = rng.choice([c for c in CITIES if c != profile["city"]])
        first = f'fill "City" with "{value}"'
    else:
        value = rng.choice([lang for lang in LANGUAGES if lang != profile["language"]])
        first = f'select "{value}" from "Language"'
    profile[field_] = value
    pref = rng.choice(sorted(prefs))
    prefs[pref] = not prefs[pref]                   # always a change: the click is needed
    steps = [first, f'click "{pref}"', 'click "Save changes"']
    return (f"Set your {field_} to {value}, turn {'on' if prefs[pref] else 'off'} "
            f'"{pref}" and save',
            {field_: value, "preference": pref}, steps,
            {"saved": {"profile": profile, "preferences": prefs}})


@dataclass(frozen=True)
class Template:
    name: str
    start: str                                       # the page it starts on
    draft: Callable[[dict, random.Random], Draft]

    def task(self, seed: int) -> SiteTask:
        site = self.name.split(".", 1)[0]
        task, values, steps, expect = self.draft(world(site, seed),
                                                 random.Random(f"{self.name}:{seed}"))
        return SiteTask(self.name, seed, task, self.start, values, "; ".join([*steps, "done"]),
                        expect)


TEMPLATES = {t.name: t for t in (
    Template("shop.add", "shop/index.html", shop_add),
    Template("shop.buy", "shop/index.html", shop_buy),
    Template("contact.ask", "contact/index.html", contact_ask),
    Template("booking.trip", "booking/index.html", booking_trip),
    Template("inbox.reply", "inbox/index.html", inbox_reply),
    Template("inbox.archive", "inbox/index.html", inbox_archive),
    Template("settings.update", "settings/index.html", settings_update),
)}


def parse_templates(text: str | None, templates: Mapping[str, object] = TEMPLATES) -> list[str]:
    """The names of `templates` in `--templates a,b` (every one when None); a site's name
    stands for all its templates. ValueError names what is unknown."""
    if text is None:
        return list(templates)
    names = []
    for part in (p.strip() for p in text.split(",") if p.strip()):
        found = [t for t in templates if t == part or t.split(".")[0] == part]
        if not found:
            raise UsageError(f"unknown template {part!r}; choose from {', '.join(templates)} "
                             "(or a site's name for all of its templates)")
        names += [t for t in found if t not in names]
    if not names:
        raise UsageError("no template named")
    return names

