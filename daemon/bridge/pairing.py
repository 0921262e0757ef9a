"""Pairing: the shared secret between the daemon and the extension, and the extension's identity.

The token is a random string in `<config dir>/token`, readable by the user alone (0600). The
extension learns it either from `pairing.json` inside its own folder (written by `nightloop pair`
or by the browser launcher) or from the token the user pastes into its popup. The extension id is
pinned by the public `key` in extension/manifest.json, so its origin is known in advance.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import secrets
from pathlib import Path

EXTENSION_DIR = Path(__file__).resolve().parents[2] / "extension"    # in the repository
PAIRING_FILE = "pairing.json"


def load_or_create_token(config_dir: Path) -> str:
    """Return the pairing token, creating it (mode 0600) on first use.

    A token file that others can read is tightened to 0600 rather than trusted as is.
    """
    path = config_dir / "token"
    config_dir.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        if path.stat().st_mode & 0o077:
            path.chmod(0o600)
        token = path.read_text().strip()
        if token:
            return token
        fd = os.open(path, os.O_WRONLY | os.O_TRUNC)
    token = secrets.token_urlsafe(32)
    with os.fdopen(fd, "w") as f:
        f.write(token + "\n")
    return token


def extension_id(extension_dir: Path = EXTENSION_DIR) -> str:
    """Chrome's id for an extension with this manifest `key`: sha256 of the key, in a-p digits."""
    manifest = json.loads((extension_dir / "manifest.json").read_text())
    digest = hashlib.sha256(base64.b64decode(manifest["key"])).hexdigest()[:32]
    return "".join(chr(ord("a") + int(c, 16)) for c in digest)


def extension_origin(extension_dir: Path = EXTENSION_DIR) -> str:
    return f"chrome-extension://{extension_id(extension_dir)}"


def write_pairing_file(extension_dir: Path, port: int, token: str) -> Path:
    """Write pairing.json into an extension folder so the extension pairs by itself on start."""
    path = extension_dir / PAIRING_FILE
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)                # the mode above applies only to a new file
    with os.fdopen(fd, "w") as f:
        json.dump({"port": port, "token": token}, f)
    return path
