"""`nightloop secrets`: the values a task names as {{NAME}}, kept in the system keyring."""

from __future__ import annotations

import click

from daemon.core.vault import Vault, check_name


@click.group("secrets")
def secrets_group() -> None:
    """Secrets a task names instead of holding them: write {{NAME}} in the task (``Log in as
    ada with password {{SHOP_PW}}``); the model sees only the placeholder, the episode stores
    only it, and nightloop types the value only into the page. Values live in the system
    keyring (GNOME Keyring, KWallet, the macOS Keychain, the Windows Credential Locker) and
    nowhere else.
    """


@secrets_group.command("set")
@click.argument("name")
def secrets_set(name: str) -> None:
    """Save a secret under NAME (asked for twice, never echoed); saving again replaces it.

    Example: nightloop secrets set SHOP_PW
    """
    check_name(name)
    value = click.prompt(f"value of {name}", hide_input=True, confirmation_prompt=True,
                         err=True)
    Vault().set(name, value)
    click.echo(f"saved {name}: write {{{{{name}}}}} in a task to use it")


@secrets_group.command("list")
def secrets_list() -> None:
    """List the saved secrets' names (never their values).

    Example: nightloop secrets list
    """
    names = Vault().names()
    if not names:
        click.echo("no secrets saved: `nightloop secrets set NAME`")
    for name in names:
        click.echo(name)


@secrets_group.command("delete")
@click.argument("name")
def secrets_delete(name: str) -> None:
    """Forget the secret NAME (from the keyring and the list).

    Example: nightloop secrets delete SHOP_PW
    """
    Vault().delete(name)
    click.echo(f"deleted {name}")
