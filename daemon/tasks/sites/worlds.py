"""The content of each bundled site for a seed: its products, messages, trips, account.

A world is plain JSON: the server hands it to the site's pages (`/api/world?site=&seed=`), which
render it and keep what the user does in the tab's session storage; the templates draw their
tasks from the same world, so a task always names things the site shows. Similar things sit
side by side on purpose (a blue mug and a blue glass, two messages from one sender): they are
the distractors.
"""

from __future__ import annotations

import random
from typing import Any

from daemon.core.errors import UsageError

SITES = ("shop", "contact", "booking", "inbox", "settings")

_COLORS = ("blue", "red", "green", "black", "white", "yellow")
_GOODS = (("ceramic mug", "Kitchen", 9), ("glass mug", "Kitchen", 11), ("teapot", "Kitchen", 24),
          ("water bottle", "Outdoor", 15), ("camping lamp", "Outdoor", 32),
          ("rain jacket", "Clothing", 59), ("wool scarf", "Clothing", 21),
          ("cotton t-shirt", "Clothing", 14), ("notebook", "Office", 6),
          ("desk lamp", "Office", 38), ("pencil case", "Office", 7), ("backpack", "Outdoor", 45))
_CARDS = ("Visa ending 4242", "Mastercard ending 4444", "Amex ending 8431")
FIRST = ("Ada", "Grace", "Alan", "Linus", "Margaret", "Dennis", "Barbara", "Ken", "Frances",
         "Edsger", "Katherine", "Tim", "Radia", "John", "Hedy", "Niklaus")
LAST = ("Lovelace", "Hopper", "Turing", "Torvalds", "Hamilton", "Ritchie", "Liskov", "Thompson",
        "Allen", "Dijkstra", "Johnson", "Berners-Lee", "Perlman", "Backus", "Lamarr", "Wirth")
CITIES = ("Lisbon", "Porto", "Madrid", "Seville", "Lyon", "Paris", "Geneva", "Milan", "Turin",
          "Vienna", "Munich", "Prague")
TOPICS = ("Billing", "Delivery", "Returns", "Technical problem", "Account access")
_SUBJECTS = ("Invoice for November", "Team lunch on Friday", "Your parcel is on its way",
             "Quarterly report draft", "Holiday rota", "Password reset request",
             "Conference tickets", "Meeting notes", "Welcome aboard", "Broken link on the site")
LANGUAGES = ("English", "Português", "Español", "Français", "Deutsch", "Italiano")
PREFERENCES = ("Email notifications", "Weekly summary", "Dark mode", "Show my profile publicly")


def world(site: str, seed: int) -> dict[str, Any]:
    """The world of `site` for `seed` (the same for the same pair, everywhere)."""
    if site not in SITES:
        raise UsageError(f"unknown site {site!r}; the sites are {', '.join(SITES)}")
    return _BUILDERS[site](random.Random(f"{site}:{seed}"))


def person(rng: random.Random) -> str:
    return f"{rng.choice(FIRST)} {rng.choice(LAST)}"


def _shop(rng: random.Random) -> dict[str, Any]:
    goods = rng.sample(_GOODS, 6)
    products = []
    for good, category, price in goods:
        for color in rng.sample(_COLORS, 2):        # two colours of each: each other's distractor
            products.append({"id": f"p{rng.randrange(10**6):06d}",
                             "name": f"{color.capitalize()} {good}", "category": category,
                             "price": price + rng.choice((0, 1, 2))})
    rng.shuffle(products)
    return {"products": products, "cards": rng.sample(_CARDS, len(_CARDS))}


def _contact(rng: random.Random) -> dict[str, Any]:
    return {"topics": rng.sample(TOPICS, len(TOPICS))}


def _booking(rng: random.Random) -> dict[str, Any]:
    cities = rng.sample(CITIES, 8)
    times = sorted(rng.sample([f"{h:02d}:{m:02d}" for h in range(6, 22) for m in (0, 15, 30, 45)],
                              5))
    trips = [{"time": t, "price": rng.randrange(19, 89)} for t in times]
    rng.shuffle(trips)
    return {"cities": cities, "trips": trips}


def _inbox(rng: random.Random) -> dict[str, Any]:
    senders = [person(rng) for _ in range(5)]
    messages = []
    for i, subject in enumerate(rng.sample(_SUBJECTS, 9)):
        sender = senders[i % len(senders)]           # some senders wrote twice
        messages.append({"id": f"m{rng.randrange(10**6):06d}", "from": sender,
                         "subject": subject,
                         "body": f"Hi, a note about {subject.lower()}. Best, {sender.split()[0]}"})
    rng.shuffle(messages)
    return {"messages": messages}


def _settings(rng: random.Random) -> dict[str, Any]:
    first, last = rng.choice(FIRST), rng.choice(LAST)
    return {"profile": {"name": f"{first} {last}", "email": f"{first.lower()}@example.test",
                        "phone": f"+351 9{rng.randrange(10**7, 10**8)}",
                        "city": rng.choice(CITIES), "language": rng.choice(LANGUAGES)},
            "preferences": {p: rng.random() < 0.5 for p in PREFERENCES},
            "languages": list(LANGUAGES)}


_BUILDERS = {"shop": _shop, "contact": _contact, "booking": _booking, "inbox": _inbox,
             "settings": _settings}
