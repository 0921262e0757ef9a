"""Element descriptors on their own: what `describe` keeps, and how `find` finds the element
again on a fresh load (other ids, reordered twins, renamed elements)."""

from __future__ import annotations

from daemon.agent.descriptors import describe, find, label
from daemon.core.observation import Element, Observation


def page(*elements: Element) -> Observation:
    return Observation("https://shop.test/", "Shop", list(elements))


FIRST = page(Element(1, "h1", "heading", "Cart"),
             Element(2, "button", "button", "Remove"),
             Element(3, "button", "button", "Remove"),
             Element(4, "input", "textbox", "Coupon", type="text"))


def test_describe_keeps_what_identifies_the_element_and_its_rank_among_twins():
    assert describe(FIRST, 3) == {"role": "button", "name": "Remove", "tag": "button", "nth": 1}
    assert describe(FIRST, 4, {"label": "Coupon code", "text": ""}) == {
        "role": "textbox", "name": "Coupon", "tag": "input", "type": "text", "nth": 0,
        "label": "Coupon code"}                         # empty extras are dropped
    assert describe(FIRST, 99) is None


def test_find_on_a_fresh_load_with_other_ids():
    fresh = page(Element(10, "input", "textbox", "  coupon ", type="text"),
                 Element(11, "button", "button", "Remove"),
                 Element(12, "button", "button", "Remove"),
                 Element(13, "h1", "heading", "Cart"))
    assert find(fresh, describe(FIRST, 4)).id == 10     # name compared case- and space-blind
    assert find(fresh, describe(FIRST, 2)).id == 11     # twins: the same rank
    assert find(fresh, describe(FIRST, 3)).id == 12


def test_find_refuses_what_is_not_the_same_element():
    renamed = page(Element(5, "button", "button", "Delete"))
    assert find(renamed, describe(FIRST, 2)) is None                # renamed: not found
    other_role = page(Element(5, "a", "link", "Remove"))
    assert find(other_role, describe(FIRST, 2)) is None             # same name, other kind
    one_twin_left = page(Element(7, "button", "button", "Remove"))
    assert find(one_twin_left, describe(FIRST, 3)).id == 7          # a single match is it
    two_of_three = page(*(Element(i, "button", "button", "Remove") for i in (1, 2)))
    assert find(two_of_three, {**describe(FIRST, 3), "nth": 2}) is None


def test_label_is_how_people_read_a_descriptor():
    assert label(describe(FIRST, 2)) == 'button "Remove"'
    assert label(None) == "(no element)"


def test_a_rebound_name_falls_back_to_the_values_it_holds():
    """A message link named sender — subject, rebound to a new sender: the subject was the
    old page's own, so the first link that holds the new sender is the one."""
    inbox = page(Element(1, "a", "link", "Dennis Allen — Rota"),
                 Element(2, "a", "link", "Grace Hopper — Lunch"),
                 Element(3, "a", "link", "Dennis Allen — Invoice"),
                 Element(4, "button", "button", "Dennis Allen"))
    rebound = {"role": "link", "tag": "a", "name": "Dennis Allen — Team lunch", "nth": 0,
               "holds": ["Dennis Allen"]}
    assert find(inbox, rebound).id == 1                 # the first of the set, a link
    assert find(page(*inbox.elements[1:]), rebound).id == 3     # the next, once 1 is gone
    assert find(page(inbox.elements[1]), rebound) is None       # none holds the value
    assert find(inbox, {**rebound, "holds": None}) is None      # a plain descriptor: exact only
