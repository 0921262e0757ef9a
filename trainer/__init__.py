"""The trainer: SFT warm-up and LoRA GRPO on scored episodes, GGUF adapter export and the
evaluation gate (trainer/cycle.py runs them as one learning cycle)."""
