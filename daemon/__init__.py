"""nightloop's daemon: the WebSocket server, the episode loop, the store and the CLI."""
