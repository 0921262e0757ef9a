"""The `nightloop` command: click commands and their output, thin over the library (`main` holds
the group and the daemon/browser/task commands; one module per command group)."""
