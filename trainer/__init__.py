"""The trainer: SFT warm-up and LoRA GRPO on scored episodes (issue 7; not built yet)."""
