"""`automem loop run`'s options turned into what the driver runs: settings, the loop's id, services.

Every check a start makes before it touches the log is here, in the order the command has
always made them, so the first wrong option is the one named.
"""

from __future__ import annotations

from pathlib import Path

import msgspec

from automem.engine.envs import resolve_task
from automem.engine.loop.plan import Settings, check_id, loop_id
from automem.engine.loop.stages import Services
from automem.engine.policy.sampling import check_sampling
from automem.engine.policy.spec import parse_spec
from automem.schemas.agent import parse_label
from automem.schemas.errors import UserError
from automem.schemas.limits import parse_seeds


class Options(msgspec.Struct, frozen=True, kw_only=True):
    """The command's options as given (seed sets and loops as text, the trainer config as a path)."""

    env: str = "crafter"
    task: str | None = None
    episodes: int = 3  # seeds per set when a set is not given
    max_steps: int = 30
    train_seeds: str | None = None
    select_seeds: str | None = None
    heldout_seeds: str | None = None
    loops: str = "1,2"
    policy: str = "local"
    structure: str = "auto"
    reviewer: str | None = None  # None: the policy
    reviewer_turns: int = 6
    reviewer_tokens: int = 4096
    base: str = "local"
    train_steps: int | None = None
    config: str | None = None
    device: str = "auto"
    compare: str | None = None  # a baseline agent on the held-out seeds
    probes: bool = False  # memory probes on every evaluation side
    temperature: float = 1.0  # the training rollouts' sampling (0: greedy)
    top_p: float = 1.0
    fresh_seeds: bool = True  # new training seeds every iteration after the first
    min_examples: int = 300  # loop 2 collects rollouts until its selection keeps this many decisions...
    rollout_budget: int | None = None  # ...or this many episodes are played (None: 4 rounds of training seeds)
    allow_small: bool = False  # train on a dataset under the minimum
    wait: float = 3600
    loop: str | None = None  # --id
    bus: str | None = None


ROUNDS = 4  # the default rollout budget, in rounds of the training seeds


class Start(msgspec.Struct, frozen=True, kw_only=True):
    settings: Settings
    loop: str
    services: Services | None  # None: embedded


def _seeds(text: str | None, start: int, count: int) -> tuple[int, ...]:
    return tuple(parse_seeds(text)) if text else tuple(range(start, start + count))


def _sampling(o: Options) -> tuple[float | None, float | None]:
    """(temperature, top_p); greedy rollouts are recorded as no sampling at all, as loops
    before sampling were."""
    sampling = check_sampling(o.temperature, o.top_p)
    return (None, None) if sampling.greedy else (sampling.temperature, sampling.top_p)


def _collecting(o: Options, loops: tuple[int, ...], seeds: int) -> tuple[int, int, bool]:
    """(min_examples, rollout_budget, allow_small): none without loop 2, which builds no dataset."""
    if 2 not in loops:
        return 0, 0, False
    budget = ROUNDS * seeds if o.rollout_budget is None else o.rollout_budget
    return o.min_examples, budget if o.min_examples else 0, o.allow_small


def settings_from_options(o: Options) -> Start:
    """The loop a start names, checked: seed sets apart, policies parseable, a trainer's settings
    only where this process trains."""
    try:
        chosen = tuple(sorted({int(x) for x in o.loops.split(",")}))
    except ValueError:
        raise UserError(f"--loops is 1, 2 or 1,2; got {o.loops!r}") from None
    text = ""
    if o.config:
        try:
            text = Path(o.config).read_text()
        except OSError as exc:
            raise UserError(f"cannot read --config {o.config}: {exc.strerror or exc}") from None
    train = _seeds(o.train_seeds, 1000, o.episodes)
    temperature, top_p = _sampling(o)
    minimum, budget, allow_small = _collecting(o, chosen, len(train))
    settings = Settings(
        env=o.env, task=resolve_task(o.env, o.task), train_seeds=train,
        select_seeds=_seeds(o.select_seeds, 2000, o.episodes), heldout_seeds=_seeds(o.heldout_seeds, 3000, o.episodes),
        max_steps=o.max_steps, loops=chosen, policy=o.policy, structure=o.structure,
        reviewer=(o.reviewer or o.policy) if 1 in chosen else "", reviewer_turns=o.reviewer_turns,
        reviewer_tokens=o.reviewer_tokens, base=o.base, train_steps=o.train_steps, config=text,
        device=o.device, compare=parse_label(o.compare).label() if o.compare else "", probes=o.probes,
        temperature=temperature, top_p=top_p, fresh_seeds=o.fresh_seeds, min_examples=minimum, rollout_budget=budget,
        allow_small=allow_small).check()
    for spec in filter(None, (settings.policy, settings.reviewer)):
        parse_spec(spec)
    name = check_id(o.loop) if o.loop else loop_id(settings)
    services = Services(wait_s=o.wait) if o.bus and o.bus.startswith("kafka://") else None
    if services and (o.config or o.train_steps or o.device != "auto"):
        raise UserError("on a kafka:// bus `automem consume trainer` trains with its own settings "
                        "($AUTOMEM_TRAIN_CONFIG, $AUTOMEM_TRAIN_DEVICE): drop --config, --train-steps and --device")
    return Start(settings=settings, loop=name, services=services)
