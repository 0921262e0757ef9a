"""What the content script sees and does on awkward pages, through the real extension."""

from __future__ import annotations

import json

import pytest
from conftest import follow, nightloop, run_async

from daemon.agent.approvals import origin

pytestmark = pytest.mark.browser


def observe(daemon_proc) -> dict:
    out = nightloop("observe", "--json", *daemon_proc.args()).stdout
    return json.loads(out)["observation"]


def by_name(obs: dict) -> dict[str, dict]:
    return {e["name"]: e for e in obs["elements"]}


def test_observation_covers_frames_shadow_dom_and_form_controls(browser, daemon_proc, pages_url):
    page = browser.context.new_page()
    page.goto(f"{pages_url}/widgets.html")
    page.frame_locator("#frame").locator("#city").wait_for()
    obs = observe(daemon_proc)
    elements = by_name(obs)

    assert obs["title"] == "Widgets" and obs["url"].endswith("/widgets.html")
    size = elements["Size"]
    assert size["role"] == "combobox" and size["options"] == ["Small", "Medium", "Large"]
    assert size["selected"] == "Medium"
    notes = elements["Notes"]
    assert notes["role"] == "textbox" and notes["editable"] and notes["value"] == "first draft"
    assert elements["Shadow button"]["frame"] == "shadow"
    assert elements["Shadow input"]["editable"]
    assert elements["City in frame"]["frame"] == "iframe"
    assert elements["Frame button"]["frame"] == "iframe"
    assert elements["Far below button"]["in_view"] is False
    assert elements["Size"]["in_view"] is True
    # A heading is context, never a target; controls are targets.
    assert elements["Widgets"]["role"] == "heading" and elements["Widgets"]["context"] is True
    assert not any(elements[n].get("context") for n in ("Size", "Notes", "Shadow button"))

    # Hidden things are not there; the password's value never leaves the page.
    names = " ".join(elements)
    for hidden in ("Display none", "Visibility hidden", "Transparent", "Hidden attribute",
                   "Input inside hidden div", "csrf"):
        assert hidden not in names
    assert elements["Secret"]["type"] == "password"
    assert "topsecret-value" not in json.dumps(obs)

    # Ids are stable for the same element across observations.
    again = by_name(observe(daemon_proc))
    assert {n: e["id"] for n, e in again.items()} == {n: e["id"] for n, e in elements.items()}

    # A payment card's number or a one-time code never leaves its page either (autocomplete).
    page.goto(f"{pages_url}/payment.html")
    paying = observe(daemon_proc)
    fields = by_name(paying)
    assert fields["Card"]["autocomplete"] == "cc-number" and fields["Card"]["value"] == "•••"
    assert fields["Code"]["value"] == "•••"
    assert "4111111111111111" not in json.dumps(paying) and "918273" not in json.dumps(paying)
    # Which form each control belongs to (the form= attribute too), where each link leads.
    assert fields["Card"]["form"] == fields["Pay"]["form"] == fields["Review order"]["form"]
    assert fields["Search"]["form"] == fields["Search the shop"]["form"] != fields["Pay"]["form"]
    assert "form" not in fields["Terms"]
    assert fields["A better offer elsewhere"]["link_origin"] == "http://elsewhere.test"
    assert fields["Terms"]["link_origin"] == origin(pages_url)


def test_actions_reach_into_frames_and_shadow_roots(browser, daemon_proc, pages_url):
    page = browser.context.new_page()
    page.goto(f"{pages_url}/widgets.html")
    page.frame_locator("#frame").locator("#city").wait_for()
    episode = follow("run", *daemon_proc.args(),
                     'fill "City in frame" with "Lisbon"; click "Frame button"; '
                     'click "Shadow button"; fill "Notes" with "second draft"; '
                     'select "Large" in "Size"; click "Vanishing button"; '
                     'click "Vanishing button"')
    # The last instruction names the button the one before removed: the policy gives up.
    assert episode["status"] == "gave_up"
    assert episode["final_answer"] == "no element labelled 'Vanishing button' on the page"

    frame = page.frame_locator("#frame")
    assert frame.locator("#city").input_value() == "Lisbon"
    assert frame.locator("body").get_attribute("data-clicked") == "yes"
    assert page.locator("body").get_attribute("data-shadow-clicked") == "yes"
    assert page.locator("#notes").inner_text() == "second draft"
    assert page.locator("#size").input_value() == "Large"

    steps = json.loads(nightloop("episodes", "show", str(episode["id"]), "--json",
                                 "--db", str(daemon_proc.db)).stdout)["steps"]
    assert [s["action"]["action"] for s in steps] == [
        "fill", "click", "click", "fill", "select_option", "click", "give_up"]
    assert all(s["ok"] for s in steps)


def test_an_element_that_vanished_after_observation_is_an_action_error(browser, daemon_proc,
                                                                       pages_url):
    page = browser.context.new_page()
    page.goto(f"{pages_url}/widgets.html")
    vanishing = by_name(observe(daemon_proc))["Vanishing button"]["id"]
    page.evaluate("document.getElementById('remove-me').remove()")
    reply = _act(daemon_proc, {"action": "click", "id": vanishing})
    assert reply["ok"] is False
    assert f"element [{vanishing}] no longer exists on the page" in reply["error"]


def _act(daemon_proc, action: dict) -> dict:
    from daemon.bridge.pairing import load_or_create_token
    from daemon.core import protocol as p
    from daemon.core.settings import config_dir
    from daemon.service.client import connected

    async def go():
        async with connected(daemon_proc.port, load_or_create_token(config_dir())) as client:
            return await client.request(p.Act("", action))
    reply = run_async(go())
    return {"ok": reply.ok, "error": reply.error}


def test_scroll_and_hover_change_what_the_page_shows(browser, daemon_proc, pages_url):
    page = browser.context.new_page()
    page.goto(f"{pages_url}/widgets.html")
    assert by_name(observe(daemon_proc))["Far below button"]["in_view"] is False
    episode = follow("run", *daemon_proc.args(), 'hover "Hover me"; scroll down')
    assert episode["status"] == "done"
    assert page.locator("body").get_attribute("data-hovered") == "yes"
    assert page.evaluate("scrollY") > 0
    nightloop("run", *daemon_proc.args(), 'scroll to "Far below button"')
    assert by_name(observe(daemon_proc))["Far below button"]["in_view"] is True


def test_accessible_names_are_the_ones_chromium_computes(browser, daemon_proc, pages_url):
    """Labels holding only an image, aria-labelledby (hidden or several ids), title before
    placeholder, a select inside its label, images and hidden icons in buttons, radios in a
    fieldset, switches: each control of names.html is called what Chromium's accessibility
    tree calls it."""
    page = browser.context.new_page()
    page.goto(f"{pages_url}/names.html")
    cdp = browser.context.new_cdp_session(page)
    cdp.send("Accessibility.enable")
    root = cdp.send("DOM.getDocument", {"depth": -1})["root"]["nodeId"]
    cases = cdp.send("DOM.querySelectorAll", {"nodeId": root, "selector": "[data-case]"})
    chromium = [" ".join(cdp.send("Accessibility.getPartialAXTree", {
        "nodeId": node, "fetchRelatives": False})["nodes"][0]["name"]["value"].split())
                for node in cases["nodeIds"]]
    ours = [e["name"] for e in observe(daemon_proc)["elements"] if not e.get("context")]
    assert len(chromium) == 19 and "Search" in chromium and ours == chromium
    # A radio is named by its own label, not its group's legend; a switch by its label.
    assert chromium[-4:] == ["Express", "Pick up in store", "Dark mode", "Wi-Fi"]
    # A name that takes an embedded field's value never takes a secret one's.
    page.evaluate("""() => {
        document.body.insertAdjacentHTML("beforeend", '<span id="pin">PIN <input type="password"'
            + ' value="s3cret-in-a-label"></span><button aria-labelledby="pin">Go</button>');
    }""")
    seen = json.dumps(observe(daemon_proc))
    assert "s3cret-in-a-label" not in seen and '"name": "PIN"' in seen
