"""The spans of a task a fill may type (daemon/core/spans.py), on their own."""

from __future__ import annotations

from daemon.core.spans import MAX_WORDS, spans


def test_quoted_strings_emails_and_runs_of_words_as_written():
    task = 'Sign up as "Ada L." with ada@example.org on 10/20/2017, then click Save.'
    found = spans(task)
    assert found[:2] == ("Ada L.", "ada@example.org")           # quoted and e-mails first
    for span in ("10/20/2017", "Sign up as", "Save", "ada@example.org on 10/20/2017"):
        assert span in found
    assert "Save." not in found and "10/20/2017," not in found  # ends' punctuation left off
    assert all(len(s.split()) <= MAX_WORDS for s in found[2:])
    assert "with ada@example.org on 10/20/2017, then click" in found   # six words, as written
    assert 'as "Ada L." with' not in found                  # a quote would need an escape


def test_case_the_task_asks_for_and_a_task_with_nothing_to_type():
    assert "typo" in spans('Enter "tYPo" in lower case') and \
        "TYPO" not in spans('Enter "tYPo" in lower case')
    assert "TYPO" in spans('Enter "tYPo" in upper case')
    assert spans("") == () and spans(" ... ") == ()
    assert spans("don't stop") == ("don't", "don't stop", "stop")   # an apostrophe is no quote


def test_a_named_secret_is_one_span_never_cut_and_never_its_bare_name():
    found = spans("Log in as ada with password {{SHOP_PW}} please")
    assert found[0] == "{{SHOP_PW}}" and "SHOP_PW" not in found
    assert not [s for s in found if s.count("{") != s.count("}") or "{{SHOP_PW" in s
                and "{{SHOP_PW}}" not in s]
    assert "SHOP_PW" in spans("fill SHOP_PW then {{SHOP_PW}}")      # written bare too: kept
