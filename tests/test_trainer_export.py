"""GGUF LoRA export parity: llama.cpp with the exported adapter moves the logits the way
transformers + peft does, and a zero adapter changes nothing (the shipped SmolLM2, real files)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from llama_cpp import Llama

from daemon.core.models import shipped_model
from trainer import export
from trainer.config import TrainConfig
from trainer.model import add_lora, load_base

pytestmark = pytest.mark.model


TEXT = ('<|im_start|>user\nClick the OK button on the page.<|im_end|>\n<|im_start|>assistant\n'
        '{"action": "click", "id": 3}')
# Correlation of the logit deltas, measured on this text with B ~ N(0, 0.2), seeds 0-2: all
# modules 0.994-0.997; q and k only 0.968-0.982 (0.06-0.20 without the permutation). Smaller B
# drowns the delta in Q4_1-vs-fp32 noise (N(0, 0.05): 0.85-0.98 from run to run).
B_STD = 0.2
FLOOR_ALL, FLOOR_QK, FLOOR_QK_UNPERMUTED = 0.95, 0.9, 0.5


@pytest.fixture(scope="module")
def base():
    model, _, arch = load_base(shipped_model())
    return model, arch


def llama_logits(lora: str | None = None) -> tuple[list[int], np.ndarray]:
    llm = Llama(model_path=str(shipped_model()), n_ctx=256, logits_all=True, verbose=False,
                lora_path=lora, n_threads=2)
    ids = llm.tokenize(TEXT.encode(), add_bos=False, special=True)
    llm.eval(ids)
    return ids, np.array(llm.scores[:len(ids)])


def random_adapter(model, modules: tuple[str, ...], seed: int = 0):
    torch.manual_seed(seed)                            # A's init too, not only B
    peft_model = add_lora(model, TrainConfig(lora_r=8, lora_alpha=16, target_modules=modules))
    with torch.no_grad():
        for name, param in peft_model.named_parameters():
            if "lora_B" in name:
                param.normal_(0, B_STD)
    return peft_model


def torch_delta(peft_model, ids: list[int]) -> np.ndarray:
    x = torch.tensor([ids])
    with torch.no_grad():
        with peft_model.disable_adapter():
            plain = peft_model(x).logits[0].numpy()
        return peft_model(x).logits[0].numpy() - plain


def correlation(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(a.ravel(), b.ravel())[0, 1])


@pytest.mark.timeout(600)
def test_exported_adapters_move_llama_cpp_logits_like_peft(base, tmp_path, monkeypatch):
    model, arch = base
    ids, plain = llama_logits()

    everything = random_adapter(model, TrainConfig().target_modules)
    path = export.export_adapter(everything, tmp_path / "all.gguf", arch)
    assert correlation(torch_delta(everything, ids), llama_logits(str(path))[1] - plain) \
        > FLOOR_ALL
    everything.unload()                                 # the base, unwrapped, for the next one

    qk = random_adapter(model, ("q_proj", "k_proj"), seed=1)
    expected = torch_delta(qk, ids)
    good = correlation(expected, llama_logits(str(export.export_adapter(
        qk, tmp_path / "qk.gguf", arch)))[1] - plain)
    monkeypatch.setattr(export, "permute", lambda rows, n_head: rows)   # the classic bug
    bad = correlation(expected, llama_logits(str(export.export_adapter(
        qk, tmp_path / "qk-unpermuted.gguf", arch)))[1] - plain)
    assert good > FLOOR_QK and bad < FLOOR_QK_UNPERMUTED, (good, bad)

    with torch.no_grad():
        for name, param in qk.named_parameters():
            if "lora_B" in name:
                param.zero_()
    monkeypatch.undo()
    zero = export.export_adapter(qk, tmp_path / "zero.gguf", arch)
    assert np.abs(llama_logits(str(zero))[1] - plain).max() == 0.0
    qk.unload()


def test_unmappable_tensors_are_refused():
    with pytest.raises(ValueError, match="cannot map the LoRA tensor"):
        export.gguf_tensors({"base_model.model.lm_head.lora_A.weight": np.zeros((2, 2))},
                            export.Architecture("llama", 4, 4))
