"""Task sources and benchmarks: the harness (its own endpoint and browser, shared by evaluation
and practice), MiniWoB++, the scripted teacher, practice of the user's own tasks, reports."""
