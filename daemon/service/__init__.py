"""The daemon proper: the WebSocket server and what it does with each message, app wiring,
the client the CLI talks through, the nightly scheduler and the background judge queue."""
