"""A peft LoRA adapter written as a llama.cpp GGUF LoRA adapter, in the layout llama.cpp loads.

- Metadata: general.type = adapter, adapter.type = lora, adapter.lora.alpha = peft's
  lora_alpha (llama.cpp scales by alpha / rank, as peft does), general.architecture = the
  base's.
- Tensors: for each adapted base weight NAME (GGUF naming, e.g. blk.3.attn_q.weight),
  NAME.lora_a = peft's A (r x in) and NAME.lora_b = peft's B (out x r), float32.
- llama architecture: the HF→GGUF converter permutes the rows of the q and k weights (rotary
  layout); B's rows are permuted the same way (n_head for q, n_head_kv for k), or the adapter
  loads but acts wrong. Gemma 3 needs no permutation.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from daemon.core.gguf_meta import read_metadata

# peft module path (after base_model.model.model.) → GGUF tensor name, {n} = layer
_NAMES = {
    "self_attn.q_proj": "attn_q", "self_attn.k_proj": "attn_k", "self_attn.v_proj": "attn_v",
    "self_attn.o_proj": "attn_output", "mlp.gate_proj": "ffn_gate", "mlp.up_proj": "ffn_up",
    "mlp.down_proj": "ffn_down",
}
_PEFT = re.compile(r"^base_model\.model\.model\.layers\.(\d+)\.(.+)\.lora_([AB])(?:\.default)?"
                   r"\.weight$")


@dataclass(frozen=True)
class Architecture:
    """What the GGUF export needs to know of the base model."""
    name: str                   # GGUF general.architecture: "llama", "gemma3", ...
    n_head: int
    n_head_kv: int

    @classmethod
    def of_gguf(cls, path: Path) -> Architecture:
        """The base model's, from its GGUF header."""
        meta = read_metadata(path)
        name = meta["general.architecture"]
        n_head = meta[f"{name}.attention.head_count"]
        return cls(name, n_head, meta.get(f"{name}.attention.head_count_kv", n_head))


def permute(rows: np.ndarray, n_head: int) -> np.ndarray:
    """llama.cpp's convert_hf_to_gguf q/k row permutation, on the first axis."""
    return rows.reshape(n_head, 2, rows.shape[0] // n_head // 2, *rows.shape[1:]) \
        .swapaxes(1, 2).reshape(rows.shape)


def gguf_tensors(state: dict[str, np.ndarray], arch: Architecture) -> dict[str, np.ndarray]:
    """peft's adapter state dict → {GGUF name: array}; ValueError on a tensor it cannot map."""
    out = {}
    for key, value in state.items():
        match = _PEFT.match(key)
        if not match or match.group(2) not in _NAMES:
            raise ValueError(f"cannot map the LoRA tensor {key!r} to a GGUF name")
        layer, module, which = match.groups()
        tensor = np.ascontiguousarray(value, dtype=np.float32)
        if which == "B" and arch.name == "llama" and module in ("self_attn.q_proj",
                                                                 "self_attn.k_proj"):
            tensor = permute(tensor, arch.n_head if module.endswith("q_proj") else arch.n_head_kv)
        out[f"blk.{layer}.{_NAMES[module]}.weight.lora_{which.lower()}"] = tensor
    return out


def export_adapter(peft_model, path: Path, arch: Architecture) -> Path:
    """Write `peft_model`'s (single, default) adapter to `path` as a GGUF LoRA adapter."""
    from peft import get_peft_model_state_dict
    return write_adapter({k: v.detach().float().cpu().numpy()
                          for k, v in get_peft_model_state_dict(peft_model).items()},
                         peft_model.peft_config["default"].lora_alpha, path, arch)


def write_adapter(state: dict[str, np.ndarray], lora_alpha: float, path: Path,
                  arch: Architecture) -> Path:
    """Write a peft adapter state dict (peft's tensor names) to `path` as a GGUF LoRA adapter,
    atomically (a crash leaves no half-written file at `path`)."""
    import gguf
    tensors = gguf_tensors(state, arch)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.partial")
    writer = gguf.GGUFWriter(str(tmp), arch.name)
    writer.add_string("general.type", "adapter")
    writer.add_string("adapter.type", "lora")
    writer.add_float32("adapter.lora.alpha", float(lora_alpha))
    for name, tensor in tensors.items():
        writer.add_tensor(name, tensor)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    tmp.replace(path)
    return path
