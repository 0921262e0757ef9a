"""Practice on the user's own tasks: the rules (sites and single tasks), which tasks a cycle
repeats and which it holds out, and the form guard in real Chromium with the real extension."""

from __future__ import annotations

import json

import pytest
from conftest import nightloop, run_async

from daemon.agent.policy import ScriptedPolicy
from daemon.core.errors import NotFound, UsageError
from daemon.core.store import Episode, PracticeRule, Step, Store
from daemon.tasks.practice import (
    PracticeTask,
    Rules,
    parse_site,
    practice_tasks,
    practise,
    rule_for,
    site_of,
)

FORM_TASK = 'fill "Name" with "Ada"; fill "Email" with "ada@example.com"; click "Send"'


def test_sites_are_host_and_port_of_web_urls_only():
    assert site_of("https://Shop.Example.com:8443/cart?x=1") == "shop.example.com:8443"
    assert site_of("file:///tmp/a.html") is None and site_of(None) is None
    assert parse_site("example.com") == parse_site("https://example.com/a/b") == "example.com"
    for bad in ("", "https://", "two words"):
        with pytest.raises(UsageError, match="not a site"):
            parse_site(bad)


def test_rules_allow_a_whole_site_or_one_task_and_guard_forms_accordingly():
    rules = Rules([PracticeRule("shop.test"), PracticeRule("bank.test", "check balance")])
    assert rules.allows("anything", "https://shop.test/x")
    assert rules.allows("check balance", "https://bank.test/")
    assert not rules.allows("pay rent", "https://bank.test/")
    assert not rules.allows("anything", "https://other.test/")
    balance = PracticeTask("check balance", "https://bank.test/", 1)
    assert rules.may_submit(balance, "https://bank.test/form")     # its own site
    assert rules.may_submit(balance, "https://shop.test/")         # an allowed site
    assert not rules.may_submit(balance, "https://mail.test/")     # anywhere else: never
    assert not rules.may_submit(balance, None)
    assert rules.sites_for(balance) == {"shop.test", "bank.test"}    # what the browser may change
    assert rules.sites_for(PracticeTask("pay rent", "https://bank.test/", 2)) == {"shop.test"}


def test_the_store_keeps_rules_once_and_takes_them_back(tmp_path):
    async def go():
        async with await Store.open(tmp_path / "s.db") as store:
            first = await store.allow_practice(PracticeRule("shop.test"))
            again = await store.allow_practice(PracticeRule("shop.test"))
            await store.allow_practice(PracticeRule("shop.test", "buy milk"))
            assert first.id == again.id and len(await store.practice_rules()) == 2
            assert await store.forbid_practice("shop.test") == 1          # the site rule only
            assert [(r.site, r.task) for r in await store.practice_rules()] == [
                ("shop.test", "buy milk")]
            assert await store.forbid_practice("shop.test") == 0
    run_async(go())


def test_a_cycle_practises_the_newest_allowed_user_tasks_once_each(tmp_path):
    async def go():
        async with await Store.open(tmp_path / "s.db") as store:
            async def episode(task, source="toolbar", url=None, first_url=None, status="done"):
                e = await store.start_episode(Episode(task, source, start_url=url))
                if first_url:
                    await store.add_step(Step(e.id, 0, {"action": "done"}, True, url=first_url))
                await store.finish_episode(e.id, status)
                return e.id
            await episode("buy milk", url="https://shop.test/")
            await episode("not allowed", url="https://other.test/")
            await episode("miniwob", source="eval", url="https://shop.test/")     # not the user's
            newest_milk = await episode("buy milk", url="https://shop.test/")    # same task again
            await episode("no url", first_url="https://shop.test/list")          # first step's page
            await episode("pay rent", source="demonstration", url="https://bank.test/")
            await episode("transfer", url="https://bank.test/")                  # task not allowed
            await store.allow_practice(PracticeRule("shop.test"))
            await store.allow_practice(PracticeRule("bank.test", "pay rent"))
            tasks = await practice_tasks(store, limit=10)
            assert [(t.task, t.url) for t in tasks] == [
                ("pay rent", "https://bank.test/"), ("no url", "https://shop.test/list"),
                ("buy milk", "https://shop.test/")]
            assert tasks[-1].episode_id == newest_milk
            assert len(await practice_tasks(store, limit=2)) == 2

            rule = await rule_for(store, episode_id=newest_milk)
            assert (rule.site, rule.task) == ("shop.test", "buy milk")
            with pytest.raises(NotFound, match="no episode 99"):
                await rule_for(store, episode_id=99)
    run_async(go())


def test_one_task_in_four_is_held_out_and_always_the_same_one():
    tasks = [PracticeTask(f"task {i}", "https://shop.test/", i) for i in range(400)]
    held = [t.held_out for t in tasks]
    assert 70 < sum(held) < 130
    assert held == [PracticeTask(t.task, t.url, 0).held_out for t in tasks]


@pytest.mark.browser
@pytest.mark.timeout(180)
def test_practice_submits_forms_only_on_allowed_sites(home, pages_url):
    """Real Chromium, the real extension, the normal daemon → extension path: the same task
    practised without and with a rule for the site."""
    task = PracticeTask(FORM_TASK, f"{pages_url}/form.html", 1)
    db = home / "practice.db"

    def attempt(rules: Rules) -> list[Step]:
        async def go():
            episode, = await practise([task], 1, policy=ScriptedPolicy(), db=db, rules=rules)
            assert episode.source == "practice" and episode.start_url == task.url
            async with await Store.open(db) as store:
                return await store.steps(episode.id)
        return run_async(go())

    blocked = attempt(Rules([PracticeRule("practice.elsewhere.test")]))
    click = next(s for s in blocked if s.action["action"] == "click")
    assert not click.ok and "not marked safe to practise" in click.error, click
    assert all(s.ok for s in blocked if s.action["action"] == "fill")   # typing is fine
    assert "Thanks Ada" not in blocked[-1].observation["text"]          # the page saw no submit

    allowed = attempt(Rules([PracticeRule(site_of(pages_url))]))
    assert [s.ok for s in allowed] == [True] * len(allowed)
    assert [s.action["action"] for s in allowed] == ["fill", "fill", "click", "done"]
    # The page's submit handler ran: the observation after the click shows its thank-you.
    assert "Thanks Ada" in allowed[-1].observation["text"]


@pytest.mark.process
def test_the_cli_allows_lists_and_denies_with_clear_errors(home):
    db = str(home / "s.db")

    async def seed():
        async with await Store.open(db) as store:
            e = await store.start_episode(Episode("buy milk", "toolbar",
                                                  start_url="https://Shop.test/list"))
            await store.finish_episode(e.id, "done")
    run_async(seed())
    out = nightloop("practice", "allow", "https://bank.test/x", "--episode", "1", "--db", db)
    assert out.stdout.splitlines() == ["practice allowed: any task on bank.test",
                                       "practice allowed: 'buy milk' on shop.test"]
    listed = json.loads(nightloop("practice", "list", "--json", "--db", db).stdout)
    assert [(r["site"], r["task"]) for r in listed["rules"]] == [
        ("bank.test", None), ("shop.test", "buy milk")]
    assert [t["task"] for t in listed["tasks"]] == ["buy milk"]

    assert "practice denied: any task on bank.test" in \
        nightloop("practice", "deny", "bank.test", "--db", db).stdout
    assert "was not allowed" in nightloop("practice", "deny", "bank.test", "--db", db).stdout
    bad = nightloop("practice", "allow", "not a site", "--db", db, check=False)
    assert bad.returncode == 1 and "is not a site" in bad.stderr
    bad = nightloop("practice", "allow", "--episode", "7", "--db", db, check=False)
    assert bad.returncode == 1 and "there is no episode 7" in bad.stderr
    bad = nightloop("practice", "allow", "--db", db, check=False)
    assert bad.returncode == 2 and "name at least one site or --episode" in bad.stderr


@pytest.mark.browser
@pytest.mark.timeout(240)
@pytest.mark.parametrize("layers", ["both", "extension alone"])
def test_practice_sends_nothing_that_could_change_a_site_it_was_not_allowed(home, pages_url,
                                                                           layers, monkeypatch):
    """Not only the top frame's submit event: a fetch POST, a form in a frame, one in a shadow
    root and a script's form.submit() are stopped at the network level, and goto stays on
    allowed sites; allowed, the same requests arrive (the sink can see them). The extension's
    guard holds alone, with the harness's interception letting everything through: it covers
    the tab the extension has just opened, where that interception may not yet be attached."""
    if layers == "extension alone":
        async def let_through(route, request):
            await route.continue_()
        monkeypatch.setattr("daemon.tasks.harness._guard", lambda may_send: let_through)
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    posted: list[str] = []

    class Sink(BaseHTTPRequestHandler):
        def do_POST(self):                                  # noqa: N802
            posted.append(self.path)
            self.send_response(204)
            self.end_headers()

        def do_GET(self):                                   # noqa: N802
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"<title>sink</title>")

        def log_message(self, *args):
            pass
    server = ThreadingHTTPServer(("127.0.0.1", 0), Sink)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    sink = f"http://127.0.0.1:{server.server_port}"
    task = PracticeTask('click "Go"; wait 2; done', f"{pages_url}/sneaky.html?sink={sink}", 1)
    leave = PracticeTask(f"goto {sink}/; done", f"{pages_url}/form.html", 2)

    def attempt(rules: Rules) -> list[list[Step]]:
        async def go():
            episodes = await practise([task, leave], 1, policy=ScriptedPolicy(),
                                      db=home / "practice.db", rules=rules)
            async with await Store.open(home / "practice.db") as store:
                return [await store.steps(e.id) for e in episodes]
        return run_async(go())
    try:
        _, left = attempt(Rules([PracticeRule(site_of(pages_url))]))
        assert posted == []                                 # nothing reached the sink
        assert not left[0].ok and "practice stays on sites marked safe" in left[0].error
        attempt(Rules([PracticeRule(site_of(pages_url)), PracticeRule(site_of(sink))]))
        assert {"/fetch", "/frame", "/shadow", "/top"} <= set(posted)
    finally:
        server.shutdown()


def _input(name: str) -> dict:
    return {"role": "textbox", "tag": "input", "name": name}


DEMO_STEPS = [({"action": "fill", "id": 91, "text": "Ada"}, _input("Name")),
              ({"action": "fill", "id": 92, "text": "ada@example.com"}, _input("Email")),
              ({"action": "click", "id": 93}, {"role": "button", "tag": "button", "name": "Send"}),
              ({"action": "done"}, None)]


@pytest.mark.browser
@pytest.mark.timeout(180)
def test_a_cycle_replays_good_practice_safe_demonstrations_as_new_positives(home, pages_url):
    """Real Chromium: the demonstration is replayed on fresh loads without the model; a clean
    replay gets a `replay` reward of 1 and counts for training before the judge; one that
    could only stop (its target gone) gets 0. Unsafe or password demonstrations are skipped."""
    from daemon.core.observation import MASK
    from daemon.core.store import Reward
    from daemon.tasks.practice import demonstrations_to_replay, replay_demonstrations
    from judge.reward import reward_that_counts
    db = home / "practice.db"

    async def go():
        async with await Store.open(db) as store:
            for task, url, steps in (
                    ("Send the form as Ada", f"{pages_url}/form.html", DEMO_STEPS),
                    ("Send it, renamed button", f"{pages_url}/form.html",
                     DEMO_STEPS[:2] + [({"action": "click", "id": 93},
                                        {"role": "button", "tag": "button", "name": "Go"})]),
                    ("Set a password", f"{pages_url}/form.html",
                     [({"action": "fill", "id": 94, "text": MASK}, _input("Password"))]),
                    ("Elsewhere", "http://unsafe.test/", DEMO_STEPS)):
                demo = await store.start_episode(Episode(task, "demonstration", start_url=url))
                for i, (action, target) in enumerate(steps):
                    await store.add_step(Step(demo.id, i, action, True, target=target,
                                              mode="demonstration"))
                await store.finish_episode(demo.id, "done")
                await store.add_reward(Reward(demo.id, "user", 1.0))
            await store.allow_practice(PracticeRule(site_of(pages_url)))
            demos = await demonstrations_to_replay(store)
            rules = Rules(await store.practice_rules())
        finished = await replay_demonstrations(demos, 2, db=db, rules=rules)
        async with await Store.open(db) as store:
            return demos, [(e, await store.rewards(e.id), await store.steps(e.id))
                           for e in finished]
    demos, replays = run_async(go())
    assert [d.task for d in demos] == ["Send it, renamed button", "Send the form as Ada"]
    verdicts = {(e.task, reward_that_counts(r).kind, reward_that_counts(r).value)
                for e, r, _ in replays}
    assert verdicts == {("Send the form as Ada", "replay", 1.0),
                        ("Send it, renamed button", "replay", 0.0)}
    clean = [(e, s) for e, r, s in replays if e.task == "Send the form as Ada"]
    assert len(clean) == 2 and all(e.source == "practice" and e.replay_of == 1 for e, _ in clean)
    assert all("Thanks Ada" in s[-1].observation["text"] for _, s in clean)
