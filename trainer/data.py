"""Training samples from the store: one per policy step, carrying its episode's reward.

Contract:
- A sample is the exact prompt the policy saw and the action text it emitted (the loss covers
  only the action tokens). Episodes no local model decided (the user's demonstrations, the
  oracle teacher, a model on a server) give teacher samples: the prompt the policy would have
  seen, rendered by the policy's own prompt builder, and the action as the policy writes it.
  Invalid steps give none, nor a fill whose text the store masked (a secret). A step the
  policy wrote before actions named their element's label (no ``"target"``) is written anew
  from its action and stored page (`actions.written`), without its sampler record: the
  format the grammar accepts now, for SFT only.
- Groups are attempts of the same task: the same instruction and start page (host and path),
  or for a benchmark (MiniWoB++, the bundled sites) the same task and seed (from the
  ground-truth row).
- Advantage = r - group mean, divided by (group std + eps) when the rewards are binary, shared
  by every step of a trajectory; groups whose rewards are all equal carry no signal and are
  dropped. Only the policy's own draws enter a GRPO group, with the sampler's record of them
  (`Sample.sampled`): never teacher samples, nor steps stored before the record existed.
- Rejection-sampling fine-tuning (`rft_samples`): of each group's successful attempts, the
  shortest one's steps (a success ends at the page's own end, so no step after it exists), from
  a buffer that keeps the newest groups (a cap) and lets old nights' successes fade (a decay).
"""

from __future__ import annotations

import json
import random
import statistics
from dataclasses import dataclass, replace
from typing import AsyncIterator, Callable

from daemon.agent.policy import PastStep, Sampled, StepContext
from daemon.core.actions import Action, written
from daemon.core.errors import InvalidMessage
from daemon.core.observation import MASK, Observation
from daemon.core.store import Episode, Reward, Step, Store
from daemon.tasks.practice import USER_SOURCES, practice_tasks
from daemon.tasks.templated import task_text, unmasked
from judge.judge import template
from judge.reward import reward_that_counts

from .augment import renumbered, variants
from .config import TrainConfig
from .relabel import Example, as_instructions, relabel

RenderPrompt = Callable[[StepContext], str]     # e.g. LlamaPolicy.render
RELABEL_EXAMPLES = 3        # successes per benchmark task that hindsight relabels failures by


@dataclass(frozen=True, order=True)
class Group:
    """The attempts one GRPO group compares: a benchmark's (task, seed), or a user's task on
    its start page's template. Written as `benchmark:task:seed` or `page\ntask` (exports)."""
    task: str
    benchmark: str | None = None        # miniwob | sites | skills; None: a user's task
    seed: int | None = None             # the benchmark's seed
    page: str | None = None             # a user's task: its start page's template

    def __str__(self) -> str:
        return f"{self.benchmark}:{self.task}:{self.seed}" if self.benchmark else \
            f"{self.page}\n{self.task}"


@dataclass(frozen=True)
class Sample:
    episode_id: int
    index: int
    prompt: str
    completion: str
    reward: float
    group: Group
    advantage: float = 0.0
    teacher: bool = False               # model-free (demonstration, oracle): no GRPO group
    relabelled: bool = False            # a hindsight relabelling (relabel.py): SFT only
    variant: int = 0                    # n > 0: a demonstration's n-th variant (augment.py)
    verified: bool = True               # its reward is the user's word or ground truth, not
                                        # the judge's
    sampled: Sampled | None = None      # what the policy's sampler drew (GRPO's old policy)


def truth_details(rewards: list[Reward]) -> dict:
    """The details of the first ground truth with some (benchmark, task, seed, ...), or {}."""
    return next((r.details for r in rewards if r.kind == "ground_truth" and r.details), {})


BENCHMARKS = ("miniwob", "sites", "skills")


def group_key(episode: Episode, rewards: list[Reward]) -> Group:
    truth = truth_details(rewards)
    if truth.get("benchmark") in BENCHMARKS:
        return Group(truth["task"], truth["benchmark"], truth["seed"])
    return Group(episode.task, page=template(episode.start_url))


def step_samples(episode: Episode, steps: list[Step], reward: float, group: Group) -> list[Sample]:
    out = []
    for s in steps:
        if not (s.prompt and s.raw_output and s.action and not s.invalid):
            continue
        action = _learnable(s.action)
        if action is None or action.args.get("text") == MASK:
            continue                # a secret it typed, masked: the text is not the action
        if action.element_id is not None and '"target"' not in s.raw_output and s.observation:
            # written before actions named their element: as the policy writes it now
            page = Observation.from_json(s.observation)
            out.append(Sample(episode.id, s.index, s.prompt, written(action, page), reward,
                              group))
        else:
            out.append(Sample(episode.id, s.index, s.prompt, s.raw_output, reward, group,
                              sampled=Sampled.from_json(s.sampled) if s.sampled else None))
    return out


def teacher_samples(episode: Episode, steps: list[Step], reward: float, group: Group,
                    render_prompt: RenderPrompt, secret: str | None = None) -> list[Sample]:
    """Samples from an episode no model decided (a user's demonstration, the oracle): the
    prompt the policy would have seen at each step, and the action as the policy writes it.
    Password steps (recorded as the mask) type `secret` where it is known (`restored`), else
    they are left out; the history keeps them masked, as the policy sees them."""
    out, history = [], []
    for s in steps:
        action = _learnable(s.action) if s.action else None
        page = Observation.from_json(s.observation) if s.observation else None
        if action and action.args.get("text") == MASK:
            action = Action(action.name, {**action.args, "text": secret}) if secret else None
        if action and s.ok and page:
            context = StepContext(episode.task, page, list(history))
            out.append(Sample(episode.id, s.index, render_prompt(context),
                              written(action, page), reward, group, teacher=True))
        history.append(PastStep.stored(s))
    return out


def restored(episode: Episode, rewards: list[Reward]) -> tuple[Episode, str | None]:
    """A templated benchmark's episode (the sites, the skills pages) whose task the store
    masked: with its task as the template wrote it and the secret the mask stood for, rebuilt
    from its template and seed (`daemon.tasks.templated`), for training only. Any other
    episode as it is, and None."""
    truth = truth_details(rewards)
    if MASK not in episode.task or not truth:
        return episode, None
    original = task_text(truth.get("benchmark", ""), truth.get("task", ""), truth.get("seed", -1))
    secret = unmasked(episode.task, original, MASK) if original else None
    return (replace(episode, task=original), secret) if secret else (episode, None)


def ending_sample(episode: Episode, steps: list[Step], reward: float, group: Group,
                  render_prompt: RenderPrompt) -> Sample | None:
    """For an episode that stopped without a final action (the step limit, the user's Stop):
    `done`, decided on the page where it ended (`Episode.final_observation`)."""
    last = Action.stored(steps[-1].action) if steps and steps[-1].action else None
    if not episode.final_observation or (last and last.spec.ends_episode):
        return None
    context = StepContext(episode.task, Observation.from_json(episode.final_observation),
                          [PastStep.stored(s) for s in steps])
    return Sample(episode.id, len(steps), render_prompt(context), json.dumps({"action": "done"}),
                  reward, group, teacher=True)


def _learnable(data: dict) -> Action | None:
    """A stored action as today's rules read it; None where a rule tightened since it ran
    refuses it (it is history, not an action to learn)."""
    try:
        return Action.parse(data)
    except InvalidMessage:
        return None


async def load_samples(store: Store, config: TrainConfig, sources: tuple[str, ...] | None = None,
                       render_prompt: RenderPrompt | None = None, after: int = 0,
                       skip: Callable[[Episode], bool] = lambda episode: False,
                       successes_only: bool = False, id_variants: int = 0,
                       keep: Callable[[int], bool] = lambda episode_id: True) -> list[Sample]:
    """Samples of every finished, rewarded episode (of `sources`, if given; with an id above
    `after`; not those `skip` names, e.g. held-out tasks; with `successes_only`, only those
    whose reward is above 0, the others' steps never read), oldest first; with
    `render_prompt`, model-free episodes give teacher samples too, each good demonstration
    its variants (augment.py; as many as `config.demo_passes` allows), and an episode the user
    gave a thumbs-up that stopped without `done` ends with one (`ending_sample`); with
    `id_variants`, each successful episode the policy decided also gives that many copies
    with its pages' element ids renumbered (prompts rendered anew); `keep` (an episode id →
    whether to read it) leaves others unread."""
    out: list[Sample] = []
    for episode in await store.episodes_after(after, sources=sources or ()):
        if not keep(episode.id) or episode.status == "running" or skip(episode):
            continue
        rewards = await store.rewards(episode.id)
        counted = trusted(reward_that_counts(rewards, config.reward), config)
        if counted is None or (successes_only and counted.value <= 0):
            continue
        steps, group = await store.steps(episode.id), group_key(episode, rewards)
        if any(s.prompt for s in steps) and not _served(episode):
            mine = _decided(episode, steps, counted, group, render_prompt, id_variants)
        elif render_prompt:
            mine = _model_free(*restored(episode, rewards), steps, counted, group, render_prompt,
                               config)
        else:
            continue
        verified = counted.kind != "judge" or bool((counted.details or {}).get("trusted"))
        out += [replace(s, verified=verified) for s in mine]
    return out


def trusted(reward: Reward | None, config: TrainConfig) -> Reward | None:
    """A judge reward as training reads it: a calibrated probability (on [-1, 1]) is trusted
    for SFT like the user's word (details["trusted"]) when its calibration states, for tasks it
    never saw, that of the episodes at SFT's threshold or above (p >= (1 + sft_threshold) / 2;
    read at the nearest stated probability not above it) at least `judge_sft_precision` were
    successes; any other judge reward only ranks attempts within a GRPO group."""
    details = (reward.details or {}) if reward else {}
    stated = (details.get("calibrated") or {}).get("stated_precision") or {}
    needed = (1 + config.sft_threshold) / 2
    below = [p for p in stated if float(p) <= needed]
    precision = stated[max(below, key=float)] if below else None
    if reward is None or reward.kind != "judge" or precision is None or \
            precision < config.judge_sft_precision:
        return reward
    return replace(reward, details={**details, "trusted": True})


def _served(episode: Episode) -> bool:
    """Decided by a model on a server (backend openai): its prompts are not the ones the local
    policy reads, so its steps are re-rendered like a demonstration's."""
    return (episode.policy or "").startswith("server:")


def _decided(episode: Episode, steps: list[Step], counted: Reward, group: Group,
             render_prompt: RenderPrompt | None, id_variants: int) -> list[Sample]:
    """An episode the policy decided: its own steps, the `done` a 👍 one never said, and
    `id_variants` copies of a success with other element ids."""
    mine = step_samples(episode, steps, counted.value, group)
    if render_prompt is None or counted.value <= 0:
        return mine
    ending = ending_sample(episode, steps, counted.value, group, render_prompt) \
        if counted.kind == "user" else None
    mine += [ending] if ending else []
    rng = random.Random(f"ids:{episode.id}")
    for n in range(1, id_variants + 1):
        mine += [replace(s, variant=n) for s in teacher_samples(
            episode, renumbered(steps, rng), counted.value, group, render_prompt)]
    return mine


def _model_free(episode: Episode, secret: str | None, steps: list[Step], counted: Reward,
                group: Group, render_prompt: RenderPrompt, config: TrainConfig) -> list[Sample]:
    """An episode no model decided: its steps as the policy would have seen them (the secret
    it typed, where known), and a good demonstration's variants (as many as `demo_passes`
    allows)."""
    mine = teacher_samples(episode, steps, counted.value, group, render_prompt, secret)
    if episode.source == "demonstration" and counted.value > 0:
        count = config.demo_passes // max(1, config.sft_epochs) - 1
        for n, (variant, changed) in enumerate(variants(episode, steps, count), 1):
            mine += [replace(s, variant=n) for s in teacher_samples(
                variant, changed, counted.value, group, render_prompt)]
    return mine


async def relabelled_samples(store: Store, render_prompt: RenderPrompt, after: int = 0,
                             skip: Callable[[Episode], bool] = lambda episode: False
                             ) -> list[Sample]:
    """Hindsight samples of the practice episodes above `after` (relabel.py): each benchmark
    failure that fulfilled another instruction of its template (by the newest
    `RELABEL_EXAMPLES` successes of its task, of any night), and each practice of a user's task
    as the instructions its actions carried out, as successes of those instructions."""
    examples: dict[str, list[Example]] = {}
    tonight: list[tuple[Episode, list[Reward], str | None]] = []
    async for episode in _newest_first(store):
        if episode.id <= after and all(len(examples.get(task, ())) >= RELABEL_EXAMPLES
                                       for _, _, task in tonight if task):
            break                   # every task of tonight's has all the examples it needs
        if episode.source != "practice" or skip(episode):
            continue
        rewards = await store.rewards(episode.id)
        truth = truth_details(rewards)
        task = f"{truth.get('benchmark')}:{truth.get('task')}" if truth else None
        won = reward_that_counts(rewards, "ground_truth")
        if task and won and won.value > 0 and MASK not in episode.task and \
                len(examples.setdefault(task, [])) < RELABEL_EXAMPLES:
            examples[task].append((episode.task, await store.steps(episode.id)))
        if episode.id > after:
            tonight.append((episode, rewards, task))
    out: list[Sample] = []
    for episode, rewards, task in reversed(tonight):
        steps = await store.steps(episode.id)
        if any(r.kind == "ground_truth" for r in rewards):
            found = relabel(episode, steps, rewards, examples.get(task, []))
            instruction = found.task if found else None
        else:
            instruction = as_instructions(steps)
        if instruction:
            out += [replace(s, relabelled=True)
                    for s in teacher_samples(replace(episode, task=instruction), steps, 1.0,
                                             f"relabelled\n{instruction}", render_prompt)]
    return out


async def _newest_first(store: Store, page: int = 500) -> AsyncIterator[Episode]:
    """The store's episodes, newest first, read a page at a time."""
    before = None
    while rows := await store.episodes(page, before):
        for episode in rows:
            yield episode
        before = rows[-1].id


def capped(samples: list[Sample], extra: list[Sample], share: float) -> list[Sample]:
    """`samples` and the newest of `extra`, so that extra makes at most `share` of the whole."""
    room = int(share / (1 - share) * len(samples)) if share < 1 else len(extra)
    newest = sorted(extra, key=lambda s: (-s.episode_id, s.index))[:room]
    return samples + sorted(newest, key=lambda s: (s.episode_id, s.index))


def advantages(rewards: list[float], eps: float) -> list[float] | None:
    """Group-relative advantages, or None when the group has no variance: binary rewards
    (success or not) are divided by the group's std as in GRPO; continuous ones (a judge's
    score) are not (Dr. GRPO: the std division over-weights groups whose scores barely
    differ)."""
    if len(rewards) < 2 or max(rewards) == min(rewards):
        return None
    mean = statistics.fmean(rewards)
    if set(rewards) <= {0.0, 1.0}:
        return [(r - mean) / (statistics.pstdev(rewards) + eps) for r in rewards]
    return [r - mean for r in rewards]


def grpo_samples(samples: list[Sample], config: TrainConfig) -> list[Sample]:
    """Samples with their trajectory's advantage; groups with fewer than `group_min`
    trajectories or zero variance are dropped, and steps without the sampler's record."""
    samples = [s for s in samples if s.sampled and not s.teacher]
    trajectories: dict[str, dict[int, float]] = {}
    for s in samples:
        trajectories.setdefault(s.group, {})[s.episode_id] = s.reward
    advantage: dict[int, float] = {}
    for episodes in trajectories.values():
        if len(episodes) < config.group_min:
            continue
        values = advantages(list(episodes.values()), config.adv_eps)
        if values is not None:
            advantage.update(zip(episodes, values))
    return [replace(s, advantage=advantage[s.episode_id]) for s in samples
            if s.episode_id in advantage]


async def windows(store: Store, before: int | None = None) -> list[int]:
    """Where the windows of the nights that trained an adapter began (the last episode id
    before each), oldest first; with `before`, only those that began before that id. The
    newest is the last night's: `nightloop train export` writes from there by default."""
    starts = sorted(a.data_window["after_episode"] for a in await store.adapters()
                    if a.data_window)
    return [start for start in starts if before is None or start < before]


def nights_since(cycle_starts: list[int]) -> Callable[[int], int]:
    """Episode id → how many cycles started after it (`cycle_starts`: the last episode id
    before each cycle, tonight's included): 0 for tonight's episodes."""
    return lambda episode_id: sum(start >= episode_id for start in cycle_starts)


def demonstrations_learnt(age: Callable[[int], int], nights: int) -> Callable[[Episode], bool]:
    """Which episodes are demonstrations trained on for `nights` nights already (`age`: see
    `nights_since`): their passes stop piling up on the adapter."""
    return lambda episode: episode.source == "demonstration" and age(episode.id) >= nights


def stays(episode_id: int, age: Callable[[int], int], decay: float) -> bool:
    """Whether a success of episode `episode_id` is in the self-imitation buffer tonight: with
    probability `decay` ** its age in nights, drawn from its id (the same draw every time, so
    the buffer is read only for those that stay)."""
    return random.Random(episode_id).random() < decay ** age(episode_id)


def rft_samples(samples: list[Sample], cap: int, age: Callable[[int], int] = lambda e: 0,
                decay: float = 1.0) -> list[Sample]:
    """Self-imitation data: per group, the shortest successful attempt (reward > 0; fewest
    steps, then the newest; with its id-renumbered copies), of the `cap` newest groups with a
    success. A success `age(episode
    id)` nights old is in the buffer with probability `decay` ** age, drawn from its episode
    id (a resumed cycle reads the same buffer): old successes fade unless solved again."""
    steps: dict[int, list[Sample]] = {}
    for s in samples:
        if s.reward > 0 and stays(s.episode_id, age, decay):
            steps.setdefault(s.episode_id, []).append(s)
    best: dict[str, list[Sample]] = {}
    for episode_id in sorted(steps, reverse=True):          # newest first
        mine = [s for s in steps[episode_id] if s.variant == 0]     # its length as it ran
        kept = best.get(mine[0].group) if mine else None
        if mine and (kept is None or len(mine) < len(kept)):
            best[mine[0].group] = mine
    newest = sorted(best.values(), key=lambda chosen: -chosen[0].episode_id)[:cap]
    return [s for chosen in newest for s in steps[chosen[0].episode_id]]   # with its variants


def sft_samples(samples: list[Sample], config: TrainConfig) -> list[Sample]:
    """The good episodes' steps: reward at or above `sft_threshold`, and verified (the user's
    word, ground truth) unless `sft_trusts_judge`: a judge score is no absolute threshold
    until the judge is calibrated across tasks; within a GRPO group it may still rank."""
    return [s for s in samples if s.reward >= config.sft_threshold
            and (s.verified or config.sft_trusts_judge)]


async def practice_outcomes(store: Store, after: int, before: int | None = None,
                            skip: Callable[[Episode], bool] = lambda episode: False
                            ) -> dict[Group, list[bool]]:
    """Group → whether each of the local model's practice attempts succeeded by ground truth,
    for the practice episodes with an id above `after` (and below `before`); the teacher's
    and the replays' are not the policy's doing."""
    outcomes: dict[Group, list[bool]] = {}
    for episode in await store.episodes_after(after, None if before is None else before - 1,
                                              sources=("practice",)):
        if not (episode.policy or "").startswith("llm:") or skip(episode):
            continue
        rewards = await store.rewards(episode.id)
        truth = reward_that_counts(rewards, "ground_truth")
        if truth is not None:
            outcomes.setdefault(group_key(episode, rewards), []).append(truth.value > 0)
    return outcomes


def solved(outcomes: dict[Group, list[bool]]) -> set[Group]:
    """The groups with at least two attempts, every one a success: nothing there to learn."""
    return {group for group, won in outcomes.items() if len(won) >= 2 and all(won)}


def mastered(outcomes: dict[Group, list[bool]]) -> set[str]:
    """The benchmark tasks (`benchmark:task`) every group of which was `solved`: practice
    on them spends the night on what the policy already does."""
    done, tasks = solved(outcomes), {}
    for group in outcomes:
        if group.benchmark:
            task = f"{group.benchmark}:{group.task}"
            tasks[task] = tasks.get(task, True) and group in done
    return {task for task, every in tasks.items() if every}


@dataclass
class TrainingSet:
    sft: list[Sample]
    grpo: list[Sample]
    window: list[int]               # the ids of the episodes above `after`
    held: set[str]                  # the user's tasks left out: the gate measures them


async def training_set(store: Store, config: TrainConfig, render: RenderPrompt, *,
                       after: int) -> TrainingSet:
    """What a cycle trains on, and what `nightloop train export` writes: from the episodes
    above `after` (this night's) and the buffers of earlier nights. The held-out user tasks
    (`PracticeTask.held_out` of the `practice_user_tasks` newest) are left out."""
    held = {t.task for t in await practice_tasks(store, config.practice_user_tasks)
            if t.held_out}

    def skip(episode: Episode) -> bool:
        return episode.task in held
    practice = await load_samples(store, config, ("practice",), render, skip=skip, after=after)
    age = nights_since(await windows(store) + [after])
    learnt = demonstrations_learnt(age, config.demo_nights)
    users = await load_samples(store, config, USER_SOURCES, render,
                               skip=lambda e: skip(e) or learnt(e))
    # Self-imitation: verified successes of this and earlier nights' practice, the policy's
    # own and the teacher's alike, the shortest per task and seed. Only successes are read:
    # every night's failures would otherwise be rendered into prompts again, for nothing.
    verified = rft_samples(await load_samples(
        store, replace(config, reward="ground_truth"), ("practice",), render, skip=skip,
        successes_only=True, id_variants=config.rft_id_variants,
        keep=lambda episode_id: stays(episode_id, age, config.rft_decay)),
        config.rft_groups, age, config.rft_decay)
    hindsight = await relabelled_samples(store, render, after, skip) \
        if config.relabel_share else []
    window = [e.id for e in await store.episodes_after(after)]
    known = solved(await practice_outcomes(store, after, skip=skip)) \
        if config.sft_skip_solved else set()
    # A benchmark's successes come through the buffer, the shortest per group: all of them
    # would weigh a group by how often the policy already solves it.
    judged = [s for s in practice if s.group.benchmark is None]
    sft = capped([s for s in {(s.episode_id, s.index, s.variant): s for s in
                              sft_samples(users + judged, config) + verified}.values()
                  if s.group not in known], hindsight, config.relabel_share)
    return TrainingSet(sft, grpo_samples(practice, config), window, held)
