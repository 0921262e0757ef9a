"""Every text the judge model reads, in one place.

All prompts are [system, user] messages in the judge model's own format (a plain layout for base
models). The user message starts with the rendered episode and ends with the question, so the
three scorers of one episode share everything up to the question (see model.JudgeModel). The
system text carries one worked example: base models (Gemma 3 270M) need it to know the shape of
the answer, and instruct models lose nothing by it.
"""

from __future__ import annotations

SYSTEM = """You read what a web agent did in a browser: the pages it visited, its actions and \
the page text at the end. Example:
Pages visited:
- Contact (http://example.com/contact)
Actions:
1. fill "Email" with 'ada@example.com'
2. click "Send"
Page text at the end: Thanks, we will reply soon
The instruction was: Enter ada@example.com as the email and send the form."""

FLIP_QUESTION = ("What one instruction was the agent given? State the intent and the exact "
                 "values; be concise; invent nothing that is not in the actions.")
FLIP_ANSWER = "The instruction was: "       # the likelihood form scores what follows this
FLIP_JSON_QUESTION = FLIP_QUESTION + (' Answer as JSON: {"reasoning": one short sentence, '
                                      '"inferred_instruction": the instruction}.')
# FLIP's output: a short reasoning, then the instruction (bounded, so the grammar completes).
FLIP_SCHEMA = {
    "type": "object",
    "properties": {"reasoning": {"type": "string", "maxLength": 100},
                   "inferred_instruction": {"type": "string", "minLength": 3,
                                            "maxLength": 120}},
    "required": ["reasoning", "inferred_instruction"],
}

DIRECT_QUESTION = "The agent was asked: {task}\nDid the agent complete this task? Answer yes or no."
YES, NO = ["yes", "Yes", " yes", " Yes"], ["no", "No", " no", " No"]


def messages(rendered: str, question: str) -> list[dict[str, str]]:
    return [{"role": "system", "content": SYSTEM},
            {"role": "user", "content": f"{rendered}\n\n{question}"}]
