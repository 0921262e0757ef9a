"""A scripted teacher for the bundled sites: it follows the script of each template's task
(`SiteTask.script`), the steps a careful person would take, through the scripted policy. It
proves every template solvable through the real extension, and records demonstrations."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable

from daemon.agent.policy import Decision, ScriptedPolicy, StepContext
from daemon.core.actions import Action

from .templates import SiteTask


class SiteTeacher:
    name = "sites-teacher"
    adapter = None

    def __init__(self, tasks: Iterable[SiteTask]):
        self.scripts = {t.task: t.script for t in tasks}
        self.scripted = ScriptedPolicy()

    async def decide(self, context: StepContext) -> Decision:
        script = self.scripts.get(context.task)
        if script is None:
            return Decision(Action("give_up", {"reason": "no script for this task"}))
        return await self.scripted.decide(dataclasses.replace(context, task=script))
