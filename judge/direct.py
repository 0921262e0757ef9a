"""The direct LLM-as-a-judge baseline: shown the task and what the agent did, the same model
answers "did the agent complete the task?"; the score is p(yes) / (p(yes) + p(no)) for the
answer's first token."""

from __future__ import annotations

import numpy as np

from .model import JudgeModel
from .prompts import DIRECT_QUESTION, NO, YES, messages


def p_yes(model: JudgeModel, rendered: str, task: str) -> float:
    logprobs = model.next_token_logprobs(
        model.format(messages(rendered, DIRECT_QUESTION.format(task=task))))
    yes = np.logaddexp.reduce(logprobs[model.first_token_ids(YES)])
    no = np.logaddexp.reduce(logprobs[model.first_token_ids(NO)])
    return float(1 / (1 + np.exp(no - yes)))
