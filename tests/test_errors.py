"""The error tree (daemon/core/errors.py): every error nightloop raises on purpose is a
NightloopError the CLI shows as one line; anything else is a bug and keeps its traceback."""

from __future__ import annotations

import click
import pytest
from click.testing import CliRunner

from daemon.agent.values import Unmatched
from daemon.cli.common import Group
from daemon.core import errors
from daemon.core.settings import ConfigError
from daemon.core.store import StoreError
from daemon.tasks import miniwob, splits
from daemon.tasks.sites.templates import parse_templates


def cli_raising(exc: Exception) -> click.Group:
    @click.group(cls=Group)
    def cli():
        pass

    @cli.command()
    def go():
        raise exc
    return cli


@pytest.mark.parametrize("exc", [errors.UsageError("unknown template 'x'"),
                                 errors.NotFound("there is no episode 9"),
                                 errors.MissingFile("no Chromium or Chrome found"),
                                 ConfigError("config.toml: bad"), StoreError("locked")])
def test_our_errors_are_one_line_for_the_user(exc):
    result = CliRunner().invoke(cli_raising(exc), ["go"])
    assert result.exit_code == 1 and result.output == f"Error: {exc}\n"


@pytest.mark.parametrize("exc", [ValueError("a bug"), KeyError("a bug"),
                                 FileNotFoundError("a bug")])
def test_anything_else_is_a_bug_and_keeps_its_traceback(exc):
    result = CliRunner().invoke(cli_raising(exc), ["go"])
    assert result.exit_code == 1 and result.exception is exc and "Error:" not in result.output


def test_what_users_get_wrong_raises_from_the_tree_and_stays_a_value_error_for_callers():
    for bad in (lambda: miniwob.parse_tasks("no-such-task"), lambda: splits.seeds("dev", 3),
                lambda: parse_templates("shop.nothing"), lambda: miniwob.suite("huge")):
        with pytest.raises(errors.UsageError) as caught:
            bad()
        assert isinstance(caught.value, ValueError)
    assert issubclass(Unmatched, errors.UsageError)
    assert issubclass(errors.NotFound, LookupError)
    assert issubclass(errors.MissingFile, FileNotFoundError)
