"""A scripted teacher for task templates on served pages (the bundled sites, the skills pages):
it follows the script of each template's task (`SiteTask.script`), the steps a careful person
would take, through the scripted policy. It proves every template solvable through the real
extension, and records demonstrations."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from urllib.parse import parse_qs, urlsplit

from daemon.agent.policy import Decision, ScriptedPolicy, StepContext
from daemon.core.actions import Action

from .templates import SiteTask


class SiteTeacher:
    name = "sites-teacher"
    adapter = None

    def __init__(self, tasks: Iterable[SiteTask]):
        self.scripts: dict[str, dict[int, str]] = {}
        for task in tasks:
            self.scripts.setdefault(task.task, {})[task.seed] = task.script
        self.scripted = ScriptedPolicy()

    def script(self, context: StepContext) -> str | None:
        """The script of the episode's task; where seeds share the task's words (on other
        pages), the one of the seed in the page's URL."""
        scripts = self.scripts.get(context.task, {})
        if len(scripts) == 1:
            return next(iter(scripts.values()))
        seed = parse_qs(urlsplit(context.observation.url).query).get("seed", [""])[0]
        return scripts.get(int(seed)) if seed.isdigit() else None

    async def decide(self, context: StepContext) -> Decision:
        script = self.script(context)
        if script is None:
            return Decision(Action("give_up", {"reason": "no script for this task"}))
        return await self.scripted.decide(dataclasses.replace(context, task=script))
