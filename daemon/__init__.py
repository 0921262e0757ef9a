"""nightloop's agent side, one package per concern; dependencies point down this list only
(import-linter contracts in pyproject.toml):

- `daemon.cli`      the `nightloop` command, thin over everything below;
- `daemon.service`  the daemon proper: WebSocket server and its message handlers, app wiring,
                    the CLI's client, the nightly scheduler, the judge queue;
- `trainer`, `judge` (top-level packages) the learning cycle and the episode judge;
- `daemon.tasks`    task sources and benchmarks: the harness, MiniWoB++, the scripted teacher,
                    practice of the user's tasks, evaluation reports;
- `daemon.bridge`   the browser side: pairing, launching Chromium with the extension, the
                    WebSocket endpoint the extension connects to and `ExtensionBrowser`;
- `daemon.agent`    the episode loop, the policy interface and its policies, prompt, privacy,
                    element descriptors, replay;
- `daemon.core`     what every part shares: actions, observations, wire records and errors,
                    the protocol, settings, the store and its migrations, model files.
"""
