"""The model the trainer updates: the base loaded from the very GGUF the daemon serves
(transformers' `gguf_file`, dequantized to fp32 on CPU), with LoRA adapters from peft on the
attention and MLP projections. bitsandbytes 4-bit QLoRA is used only when CUDA is present
(not verified on a GPU here: this machine has none)."""

from __future__ import annotations

from pathlib import Path

import torch

from .config import TrainConfig
from .export import Architecture


def quantization():
    """bitsandbytes 4-bit NF4 settings (QLoRA) when CUDA and bitsandbytes are both present
    (`pip install .[cuda]`); None otherwise: plain fp32 on the CPU."""
    if not torch.cuda.is_available():
        return None
    try:
        import bitsandbytes  # noqa: F401
        from transformers import BitsAndBytesConfig
    except ImportError:
        return None
    return BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4",
                              bnb_4bit_use_double_quant=True,
                              bnb_4bit_compute_dtype=torch.bfloat16)


def load_base(gguf: Path) -> tuple[torch.nn.Module, object, Architecture]:
    """(model, tokenizer, architecture) from a GGUF file; the model in eval mode, 4-bit on
    the GPU where `quantization()` allows, else fp32 on the CPU."""
    from transformers import AutoModelForCausalLM, AutoTokenizer
    gguf = Path(gguf)
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    quant = quantization()
    placement = {"quantization_config": quant, "device_map": {"": 0}} if quant else \
        {"dtype": torch.float32}
    model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, **placement)
    if quant:
        from peft import prepare_model_for_kbit_training
        model = prepare_model_for_kbit_training(model)
    model.eval()
    return model, tokenizer, Architecture.of_gguf(gguf)


def add_lora(model: torch.nn.Module, config: TrainConfig, *, init: bool | str = True):
    """Wrap `model` with fresh LoRA adapters as the config describes (peft's default init:
    B = 0, so the wrapped model starts out identical to the base)."""
    from peft import LoraConfig, get_peft_model
    lora = LoraConfig(r=config.lora_r, lora_alpha=config.lora_alpha,
                      lora_dropout=config.lora_dropout,
                      target_modules=list(config.target_modules), init_lora_weights=init,
                      bias="none", task_type="CAUSAL_LM")
    return get_peft_model(model, lora)


def load_lora(model: torch.nn.Module, folder: Path):
    """`model` with the trainable LoRA adapter saved (peft's save_pretrained) in `folder`."""
    from peft import PeftModel
    return PeftModel.from_pretrained(model, str(folder), is_trainable=True)
