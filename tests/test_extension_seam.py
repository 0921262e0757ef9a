"""The JavaScript seam beyond the protocol (test_protocol_js covers the messages): the actions
the extension performs, the mask it shows for a secret and the rules that make a field secret
are the Python definitions' own (daemon/core/actions.py, daemon/core/observation.py). A drift
would be an action the daemon sends and the page cannot do, or a secret one side keeps and the
other shows."""

from __future__ import annotations

import json
import re
from pathlib import Path

from daemon.core.actions import ACTIONS
from daemon.core.observation import MASK, SECRET_AUTOCOMPLETE, SECRET_NAME

EXTENSION = Path(__file__).resolve().parent.parent / "extension"
OBSERVATION = (EXTENSION / "observation.js").read_text()
ACTIONS_JS = (EXTENSION / "actions.js").read_text()
TABS = (EXTENSION / "tabs.js").read_text()


def js_constant(source: str, name: str) -> str:
    """The literal `name` is bound to in `source` (a string's text or a regex's source)."""
    found = re.search(rf"const {name} = (?:\"(.*?)\"|/(.*?)/[a-z]*);", source)
    assert found, f"{name} is not a literal in the extension"
    return found.group(1) if found.group(1) is not None else found.group(2)


def test_the_content_script_performs_exactly_the_page_actions():
    block = re.search(r"const ACTIONS = \{(.*?)\n  \};", ACTIONS_JS, re.S).group(1)
    performed = set(re.findall(r"^    (\w+)\(\{", block, re.M))
    assert performed == {name for name, spec in ACTIONS.items() if spec.runs == "page"}


def test_the_service_workers_tabs_module_performs_the_tab_actions():
    for name in (name for name, spec in ACTIONS.items() if spec.runs == "tab"):
        assert f'action.action === "{name}"' in TABS, name


def test_the_mask_and_the_secret_field_rules_are_the_daemons():
    assert js_constant(OBSERVATION, "MASK") == MASK
    assert js_constant(OBSERVATION, "SECRET_AUTOCOMPLETE") == SECRET_AUTOCOMPLETE.pattern
    assert js_constant(OBSERVATION, "SECRET_NAME") == SECRET_NAME.pattern
    assert "/i;" in re.search(r"const SECRET_NAME = .*", OBSERVATION).group(0) and \
        SECRET_NAME.flags & re.IGNORECASE


def test_the_content_scripts_files_load_in_the_order_they_build_on_each_other():
    """Each file takes from `globalThis.nightloopPage` only what an earlier one put there."""
    manifest = json.loads((EXTENSION / "manifest.json").read_text())
    files = manifest["content_scripts"][0]["js"]
    assert files == ["observation.js", "actions.js", "recorder.js", "content.js"]
    offered: set[str] = set()
    for name in files:
        source = (EXTENSION / name).read_text()
        taken = re.search(r"const \{([^}]*)\} = page;", source)
        if taken:
            wanted = {n.strip() for n in taken.group(1).split(",") if n.strip()}
            assert wanted <= offered, f"{name} takes {wanted - offered} before any file gives it"
        exported = re.search(r"globalThis\.nightloopPage = \{([^}]*)\};", source)
        offered |= {n.strip() for n in exported.group(1).split(",") if n.strip()} \
            if exported else set()
        offered |= set(re.findall(r"^  page\.(\w+) = ", source, re.M))
