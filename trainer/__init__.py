"""The trainer: SFT warm-up and LoRA GRPO on scored episodes, GGUF adapter export and the
evaluation gate (trainer/cycle.py runs them as one learning cycle).

Nothing leaves the machine: the Hugging Face libraries are put in offline mode before any of
them loads (peft otherwise looks the base model's name up on the Hub each time it saves).
"""

import os

os.environ["HF_HUB_OFFLINE"] = "1"
