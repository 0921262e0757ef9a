"""Secrets by name: the values a user keeps in the system keyring and names in a task as
``{{NAME}}``, so that no secret is ever written into a task.

Contract:
- Values live only in the system keyring (the `keyring` package: GNOME Keyring or KWallet over
  the Secret Service, the macOS Keychain, the Windows Credential Locker), under the service
  ``nightloop``. There is no file fallback: where no keyring is available (keyring finds only
  a backend it does not recommend, such as none at all or a plaintext file), saving or reading
  a secret is refused, saying so (`NoKeyring`).
- A keyring cannot list what it holds, so the names (which are not secret) are kept beside the
  settings in ``secrets.json`` (0600).
- A task names a secret as ``{{NAME}}`` (letters, digits and ``_``, starting with a letter);
  the model only ever sees the placeholder, the episode stores it, and the daemon puts the
  value in only where an action goes to the browser (`fill_in`).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from .errors import NightloopError, NotFound, UsageError
from .files import write_private
from .settings import config_dir

SERVICE = "nightloop"
PLACEHOLDER = re.compile(r"\{\{([A-Za-z][A-Za-z0-9_]{0,63})\}\}")
_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,63}")


class NoKeyring(NightloopError):
    """No system keyring to keep secrets in."""


def placeholders(text: str | None) -> list[str]:
    """The secret names `text` holds as ``{{NAME}}``, in order, each once."""
    return list(dict.fromkeys(PLACEHOLDER.findall(text or "")))


def check_name(name: str) -> str:
    if not _NAME.fullmatch(name):
        raise UsageError(f"{name!r} cannot name a secret: use letters, digits and _, starting "
                         "with a letter (at most 64), e.g. BANK_PASSWORD")
    return name


class Vault:
    """The user's secrets by name: values in the system keyring, names in `index`."""

    def __init__(self, index: Path | None = None):
        self.index = index or config_dir() / "secrets.json"

    @staticmethod
    def _keyring():
        """The keyring module, once a recommended backend is there; NoKeyring otherwise."""
        import keyring
        backend = keyring.get_keyring()
        if getattr(backend, "priority", 0) < 1:
            raise NoKeyring(
                f"no system keyring is available (keyring found {type(backend).__module__}."
                f"{type(backend).__name__}): nightloop keeps secrets only in one — GNOME "
                "Keyring or KWallet (the Secret Service on a D-Bus session), the macOS "
                "Keychain or the Windows Credential Locker — and never in a file")
        return keyring

    def names(self) -> list[str]:
        """The saved secrets' names, sorted (no keyring needed: they are not secret)."""
        try:
            return sorted(json.loads(self.index.read_text()))
        except FileNotFoundError:
            return []
        except ValueError as exc:
            raise NightloopError(f"{self.index} is not a list of secret names: {exc}") from None

    def _write_names(self, names: list[str]) -> None:
        self.index.parent.mkdir(parents=True, exist_ok=True)
        write_private(self.index, json.dumps(sorted(set(names))))

    def set(self, name: str, value: str) -> None:
        if not value:
            raise UsageError("a secret cannot be empty")
        self._keyring().set_password(SERVICE, check_name(name), value)
        self._write_names([*self.names(), name])

    def get(self, name: str) -> str:
        value = self._keyring().get_password(SERVICE, check_name(name))
        if value is None:
            raise NotFound(f"{{{{{name}}}}} is not a saved secret: `nightloop secrets set "
                           f"{name}` saves it")
        return value

    def delete(self, name: str) -> None:
        import keyring.errors
        try:
            self._keyring().delete_password(SERVICE, check_name(name))
        except keyring.errors.PasswordDeleteError:
            if name not in self.names():
                raise NotFound(f"there is no secret {name}") from None
        self._write_names([n for n in self.names() if n != name])

    def missing(self, text: str) -> list[str]:
        """The names `text` holds that no saved secret has (before an episode starts)."""
        return [n for n in placeholders(text) if n not in self.names()]

    def fill_in(self, text: str) -> tuple[str, list[str]]:
        """`text` with each ``{{NAME}}`` replaced by its value, and the values put in."""
        values = {name: self.get(name) for name in placeholders(text)}
        return PLACEHOLDER.sub(lambda m: values[m.group(1)], text), list(values.values())
