"""The browser side: pairing with the extension, launching Chromium with it loaded, and the
WebSocket endpoint it connects to, whose `ExtensionBrowser` is the agent's browser."""
