"""What a `fill` may type when the grammar holds it to the task: the spans of the task's text
that a value can be.

A user's typed values are almost always words of their own task ("Type Ada Lovelace into the
Full name box", "Enter 10/20/2017 as the date"), and a small model asked for free text types
anything. So, with the `fill_text` setting at "task", the grammar offers for `fill`'s text
only (`spans`): quoted strings without their quotes, e-mail addresses, and every run of 1 to
`MAX_WORDS` words as written (a number, a date, a time or a name is such a run), punctuation at
the run's two ends left off; where the task asks for lower or upper case, each span in that
case too. A span holding a double quote, a backslash or a control character is left out (as
labels are: the grammar's literals would need escapes). A task with none of them leaves the
text free.

What it cannot express: a value the task does not spell out — a word to copy from the page, a
date to compute, a password the task names by reference, a longer run than `MAX_WORDS` words
outside quotes.
"""

from __future__ import annotations

import re

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
    found = [next(g for g in m.groups() if g) for m in _QUOTED.finditer(task)]
    found += _EMAIL.findall(task)
    words = [(m.start(), m.end()) for m in re.finditer(r"\S+", task)]
    for i in range(len(words)):
        for j in range(i, min(i + MAX_WORDS, len(words))):
            found.append(task[words[i][0]:words[j][1]].strip(_ENDS))
    if _LOWER.search(task):
        found += [s.lower() for s in found]
    if _UPPER.search(task):
        found += [s.upper() for s in found]
    return tuple(dict.fromkeys(s for s in found if s.strip() and not _UNWRITABLE.search(s))
                 )[:MAX_SPANS]
