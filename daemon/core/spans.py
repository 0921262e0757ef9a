"""What a `fill` may type when the grammar holds it to the task: the spans of the task's text
that a value can be.

A user's typed values are almost always words of their own task ("Type Ada Lovelace into the
Full name box", "Enter 10/20/2017 as the date"), and a small model asked for free text types
anything. So, with the `fill_text` setting at "task", the grammar offers for `fill`'s text
only (`spans`): quoted strings without their quotes, e-mail addresses, and every run of 1 to
`MAX_WORDS` words as written (a number, a date, a time or a name is such a run), punctuation at
the run's two ends left off; where the task asks for lower or upper case, each span in that
case too. A secret the task names as ``{{NAME}}`` (vault.py) is one span, braces and all, and
never typed as its bare name. A span holding a double quote, a backslash or a control
character is left out (as labels are: the grammar's literals would need escapes). A task with
none of them leaves the text free.

What it cannot express: a value the task does not spell out — a word to copy from the page, a
date to compute, a password the task names by reference, a longer run than `MAX_WORDS` words
outside quotes.
"""

from __future__ import annotations

import re

from .vault import PLACEHOLDER

MAX_WORDS = 6
MAX_SPANS = 400
_QUOTED = re.compile(r'"([^"]+)"|“([^”]+)”|(?<!\w)\'([^\']+)\'(?!\w)')
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_ENDS = ".,;:!?()[]{}\"'“”‘’"
_LOWER = re.compile(r"\blower[ -]?case\b|\bsmall letters\b", re.IGNORECASE)
_UNWRITABLE = re.compile(r'["\\\x00-\x1f]')   # as in labels (observation.py): needs escapes
_UPPER = re.compile(r"\bupper[ -]?case\b|\bcapital letters\b|\ball caps\b", re.IGNORECASE)


def spans(task: str) -> tuple[str, ...]:
    """The texts a `fill` may type for `task`, in order of appearance, quoted strings and
    e-mail addresses first; at most MAX_SPANS (see the module docstring)."""
    named = [m.group() for m in PLACEHOLDER.finditer(task)]
    found = named + [next(g for g in m.groups() if g) for m in _QUOTED.finditer(task)]
    found += _EMAIL.findall(task)
    words = [(m.start(), m.end()) for m in re.finditer(r"\S+", task)]
    for i in range(len(words)):
        for j in range(i, min(i + MAX_WORDS, len(words))):
            found.append(task[words[i][0]:words[j][1]].strip(_ENDS))
    if _LOWER.search(task):
        found += [s.lower() for s in found]
    if _UPPER.search(task):
        found += [s.upper() for s in found]
    bare = {name.strip("{}") for name in named} - set(_words_outside(task, named))
    return tuple(dict.fromkeys(s for s in found if s.strip() and not _UNWRITABLE.search(s)
                               and s not in bare and _whole_placeholders(s)))[:MAX_SPANS]


def _whole_placeholders(span: str) -> bool:
    """No placeholder cut in two: every ``{{`` and ``}}`` of `span` belongs to a whole one."""
    whole = len(PLACEHOLDER.findall(span))
    return span.count("{{") == whole and span.count("}}") == whole


def _words_outside(task: str, named: list[str]) -> list[str]:
    """The task's words once its placeholders are taken out."""
    for placeholder in named:
        task = task.replace(placeholder, " ")
    return [w.strip(_ENDS) for w in task.split()]
