"""The episode loop on its own: a scripted stand-in browser (this file only) and a real store."""

from __future__ import annotations

import asyncio
import json

from conftest import run_async

from daemon.agent.episode import ActOutcome, BrowserError, Limits, run_episode
from daemon.agent.policy import Decision, ScriptedPolicy, StepContext
from daemon.core.actions import Action
from daemon.core.errors import NotFound
from daemon.core.observation import Observation
from daemon.core.store import Episode, Store
from daemon.core.vault import Vault

PAGE = {"url": "http://x/", "title": "Login", "elements": [
    {"id": 1, "tag": "input", "role": "textbox", "name": "User", "editable": True},
    {"id": 2, "tag": "input", "role": "textbox", "name": "Password", "type": "password",
     "editable": True, "value": "should-never-be-stored"},
    {"id": 3, "tag": "button", "role": "button", "name": "Log in"},
]}


class StandInBrowser:
    """Answers observe with `page`; fails the actions whose element ids are in `refuse`."""

    def __init__(self, refuse=(), observe_fails_after=None, page=PAGE):
        self.acted: list[dict] = []
        self.page = page
        self.refuse = set(refuse)
        self.observe_fails_after = observe_fails_after

    async def observe(self, tab_id):
        if self.observe_fails_after is not None and len(self.acted) >= self.observe_fails_after:
            raise BrowserError("the browser disconnected")
        return 7, Observation.from_json(self.page)

    async def act(self, tab_id, action: Action) -> ActOutcome:
        self.acted.append(action.to_json())
        if action.element_id in self.refuse:
            return ActOutcome(False, tab_id, f"element [{action.element_id}] no longer exists")
        return ActOutcome(True, tab_id)


class Recorder:
    """A policy that replays fixed decisions and remembers what it was shown."""

    name = "recorder"

    def __init__(self, *actions):
        self.actions = list(actions)
        self.seen: list[StepContext] = []

    async def decide(self, context):
        self.seen.append(context)
        return Decision(self.actions.pop(0), prompt=f"step {len(self.seen)}")


def play(tmp_path, task, policy, browser, *, limits=Limits(), stop=None, approver=None,
         **more):
    async def go():
        async with await Store.open(tmp_path / "s.db") as store:
            episode = await store.start_episode(Episode(task, "cli", policy=policy.name))
            streamed = []

            async def on_step(step):
                streamed.append(step.index)
            final = await run_episode(episode, store=store, browser=browser, policy=policy,
                                      stop=stop or asyncio.Event(), on_step=on_step,
                                      limits=limits, approver=approver, **more)
            return final, await store.steps(episode.id), streamed
    return run_async(go())


def test_an_action_error_is_recorded_and_shown_to_the_policy_next_step(tmp_path):
    policy = Recorder(Action("click", {"id": 3}), Action("click", {"id": 1}), Action("done"))
    final, steps, streamed = play(tmp_path, "log in", policy, StandInBrowser(refuse={3}))
    assert final.status == "done" and streamed == [0, 1, 2]
    assert steps[0].ok is False and "no longer exists" in steps[0].error
    assert policy.seen[1].last_error == steps[0].error
    assert policy.seen[2].last_error is None
    assert steps[0].prompt == "step 1" and steps[0].result == {"tab_id": 7}


def test_an_element_missing_from_the_observation_never_reaches_the_browser(tmp_path):
    browser = StandInBrowser()
    final, steps, _ = play(tmp_path, "t", Recorder(Action("click", {"id": 99}), Action("done")),
                           browser)
    assert browser.acted == []
    assert steps[0].ok is False
    assert steps[0].error == "element [99] is not in the observation of this page"


def test_the_step_limit_ends_the_episode_on_a_page_kept_for_training(tmp_path):
    """Where the agent never said done, the page it ended on is kept (where `done` belonged;
    trainer/data.py ending_sample), with the password's value still masked."""
    policy = Recorder(*[Action("scroll", {"direction": "down"})] * 3)
    final, steps, _ = play(tmp_path, "t", policy, StandInBrowser(), limits=Limits(max_steps=3))
    assert final.status == "step_limit" and len(steps) == 3
    assert final.final_observation["title"] == "Login"
    assert "should-never-be-stored" not in str(final.final_observation)
    done, _, _ = play(tmp_path / "b", "t", Recorder(Action("done")), StandInBrowser())
    assert done.status == "done" and done.final_observation is None


def test_stop_cuts_a_wait_short_and_ends_before_the_next_step(tmp_path):
    stop = asyncio.Event()

    class StopDuringWait(Recorder):
        async def decide(self, context):
            asyncio.get_running_loop().call_later(0.2, stop.set)
            return await super().decide(context)

    policy = StopDuringWait(Action("wait", {"seconds": 30}), Action("done"))
    final, steps, _ = play(tmp_path, "t", policy, StandInBrowser(), stop=stop)
    assert final.status == "stopped" and len(steps) == 1
    assert steps[0].act_ms < 5000


def test_a_browser_that_cannot_be_observed_fails_the_episode(tmp_path):
    policy = Recorder(Action("click", {"id": 1}), Action("done"))
    final, steps, _ = play(tmp_path, "t", policy, StandInBrowser(observe_fails_after=1))
    assert final.status == "failed" and final.error == "the browser disconnected"
    assert len(steps) == 1


def test_text_typed_into_a_password_field_is_masked_everywhere(tmp_path):
    task = 'fill "User" with "ada"; fill "Password" with "hunter2"; click "Log in"'
    browser = StandInBrowser()
    final, steps, _ = play(tmp_path, task, ScriptedPolicy(), browser)
    assert {"action": "fill", "id": 2, "text": "hunter2"} in browser.acted   # the page got it
    assert final.task == 'fill "User" with "ada"; fill "Password" with "•••"; click "Log in"'
    assert steps[1].action == {"action": "fill", "id": 2, "text": "•••"}
    assert steps[1].raw_output == 'fill "Password" with "•••"'
    assert all(e["value"] in (None, "•••") for s in steps
               for e in s.observation["elements"] if e["type"] == "password")
    for path in tmp_path.glob("s.db*"):
        assert b"hunter2" not in path.read_bytes()
        assert b"should-never-be-stored" not in path.read_bytes()


def test_an_unexpected_error_fails_the_episode_instead_of_leaving_it_running(tmp_path):
    class Broken(Recorder):
        async def decide(self, context):
            raise RuntimeError("policy bug")

    async def go():
        async with await Store.open(tmp_path / "s.db") as store:
            episode = await store.start_episode(Episode("t", "cli"))
            try:
                await run_episode(episode, store=store, browser=StandInBrowser(),
                                  policy=Broken(), stop=asyncio.Event(),
                                  on_step=lambda s: asyncio.sleep(0))
            except RuntimeError:
                pass
            return await store.episode(episode.id)

    final = run_async(go())
    assert final.status == "failed" and final.error == "internal error: RuntimeError('policy bug')"


def test_the_samplers_record_is_stored_unless_the_output_held_a_secret(tmp_path):
    """Drawn token ids spell the output: where a typed password was masked out of it, the
    record would still hold the password, so it is dropped; elsewhere it is kept."""
    from daemon.agent.policy import Sampled

    class Drawing:
        name = "drawing"

        def __init__(self):
            self.outputs = ['{"action": "fill", "id": 2, "text": "hunter2"}',
                            '{"action": "click", "id": 3}']

        async def decide(self, context):
            raw = self.outputs.pop(0)
            return Decision(Action.parse(json.loads(raw)), raw_output=raw,
                            prompt="p", sampled=Sampled(1.0, [7, 8], [-0.5, 0.0], [[7, 9], 1]))

    _, steps, _ = play(tmp_path, "log in", Drawing(), StandInBrowser(), limits=Limits(2))
    assert steps[0].raw_output == '{"action": "fill", "id": 2, "text": "•••"}'
    assert steps[0].sampled is None
    assert steps[1].sampled == {"temperature": 1.0, "tokens": [7, 8], "logprobs": [-0.5, 0.0],
                                "choices": [[7, 9], 1], "mixture": 0.0}


class StandInVault(Vault):
    """Secrets in a dict (this file only; tests/test_secrets.py has the real keyring)."""

    def __init__(self, **values):
        self.values = values

    def names(self):
        return sorted(self.values)

    def get(self, name):
        if name not in self.values:
            raise NotFound(f"{{{{{name}}}}} is not a saved secret")
        return self.values[name]


class Echoing(StandInBrowser):
    """Shows back in the User box whatever was last typed there (a page that echoes)."""

    async def observe(self, tab_id):
        typed = [a["text"] for a in self.acted if a.get("id") == 1]
        page = {**self.page, "elements": [{**e, "value": typed[-1]} if e["id"] == 1 and typed
                                          else e for e in self.page["elements"]]}
        return 7, Observation.from_json(page)


def test_a_named_secret_goes_to_the_page_only_and_the_episode_keeps_its_name(tmp_path):
    task = 'fill "User" with "ada"; fill "Password" with "{{SHOP_PW}}"; click "Log in"'
    browser = StandInBrowser()
    final, steps, _ = play(tmp_path, task, ScriptedPolicy(), browser,
                           vault=StandInVault(SHOP_PW="correct horse"))
    assert {"action": "fill", "id": 2, "text": "correct horse"} in browser.acted
    assert final.task == task and final.status == "done"
    assert steps[1].action == {"action": "fill", "id": 2, "text": "{{SHOP_PW}}"} and steps[1].ok
    for path in tmp_path.glob("s.db*"):
        assert b"correct horse" not in path.read_bytes()


def test_a_named_secret_the_page_shows_back_is_masked_and_one_not_saved_is_not_typed(tmp_path):
    policy = Recorder(Action("fill", {"id": 1, "text": "{{SHOP_PW}}"}),
                      Action("fill", {"id": 1, "text": "{{OTHER}}"}), Action("done"))
    browser = Echoing()
    _, steps, _ = play(tmp_path, "t", policy, browser, vault=StandInVault(SHOP_PW="hunter22"))
    assert browser.acted == [{"action": "fill", "id": 1, "text": "hunter22"}]
    shown = [e["value"] for e in steps[1].observation["elements"] if e["id"] == 1]
    assert shown == ["•••"]                                         # the echo, masked
    assert steps[1].ok is False and steps[1].error == \
        "{{OTHER}} cannot be typed: not saved (`nightloop secrets set`)"
    assert policy.seen[1].observation.element(1).value == "•••"     # nor did the model see it
    for path in tmp_path.glob("s.db*"):
        assert b"hunter22" not in path.read_bytes()
    _, steps, _ = play(tmp_path / "none", "t", Recorder(
        Action("fill", {"id": 2, "text": "{{SHOP_PW}}"}), Action("done")), StandInBrowser())
    assert steps[0].error == "{{SHOP_PW}} cannot be typed: no secrets are kept here"


def test_a_secret_the_user_insisted_on_writing_is_masked_in_the_task_at_once(tmp_path):
    task = 'fill "Password" with "hunter2"; done'

    async def go():
        async with await Store.open(tmp_path / "s.db") as store:
            episode = await store.start_episode(Episode(task, "cli"))
            stop = asyncio.Event()
            stop.set()                                  # not one step: the task alone
            await run_episode(episode, store=store, browser=StandInBrowser(),
                              policy=ScriptedPolicy(), stop=stop, known_secrets=("hunter2",))
            return await store.episode(episode.id)
    assert run_async(go()).task == 'fill "Password" with "•••"; done'
