"""The shared core: actions, observations, wire records and errors, the extension protocol,
settings, the SQLite store (migrations in `migrations`), model files and GGUF metadata.
Imports nothing else of nightloop."""
