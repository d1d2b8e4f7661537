"""BALROG's evaluation protocol for Crafter, MiniHack and NetHack, run on automem's agents.

BALROG (balrog/config/config.yaml, balrog/utils.py at af7d1f1) plays Crafter 10 episodes
of at most 2,000 steps, each MiniHack task 5 episodes of 100 steps, NetHack 5 episodes
ended by death or a stall; an env's figure is the mean progression over its episodes
(MiniHack's tasks pooled) with the standard error std/sqrt(n), std over n, not n-1; the
overall figure is the mean of the env means, its error sqrt(sum of squared errors) / K.
Seeds here are fixed and printed (BALROG draws one at random per episode), and every
setting that differs from BALROG's is listed as a departure, so a figure never travels
without its settings. Episodes already in the store for the same settings are reused.
"""

from __future__ import annotations

import math
from pathlib import Path

import msgspec

from automem.engine.envs import MINIHACK_IDS, make_env, resolve_task
from automem.engine.episodes.read import read_episode
from automem.engine.log.port import EventLog
from automem.engine.policy.sampling import Sampling
from automem.engine.protocol.published import ROWS, SOURCES, Published, matching
from automem.engine.rollout.players import Player
from automem.engine.rollout.request import RunRequest
from automem.schemas.agent import BALROG_HISTORY, AgentSpec
from automem.schemas.errors import UserError
from automem.schemas.events import EpisodeEnded


class EnvProtocol(msgspec.Struct, frozen=True):
    env: str
    tasks: tuple[str, ...]
    episodes: int  # per task
    max_steps: int


PROTOCOL: dict[str, EnvProtocol] = {
    "crafter": EnvProtocol("crafter", ("default",), 10, 2000),
    "minihack": EnvProtocol("minihack", tuple(MINIHACK_IDS), 5, 100),
    # NetHack's episodes end at death or after 150 key presses without the game's clock moving
    # (BALROG's no_progress_timeout, which automem's NetHack applies too); BALROG's cap is 100,000
    "nethack": EnvProtocol("nethack", ("challenge",), 5, 100_000),
}
BALROG_TEMPERATURE = 1.0  # config.yaml's default (its leaderboard rows were run at 0)


class TaskResult(msgspec.Struct, kw_only=True):
    task: str
    seeds: list[int]
    episodes: list[str]
    progression: list[float]  # per episode, in [0, 1]
    steps: list[int]
    reused: int


class EnvResult(msgspec.Struct, kw_only=True):
    env: str
    max_steps: int
    tasks: list[TaskResult]
    progression: float  # % over all the env's episodes
    standard_error: float  # %
    episodes: int


class Figure(msgspec.Struct, frozen=True):
    value: float
    error: float | None


class ProtocolResult(msgspec.Struct, kw_only=True):
    """`automem balrog --json`."""

    policy: str
    model: str
    agent: str
    sampling: str
    envs: list[EnvResult]
    average_progress: float  # % : the mean of the env means
    standard_error: float
    departures: list[str]
    published: list[Published]
    sources: dict[str, str]


def stats(progression: list[float]) -> tuple[float, float]:
    """(mean %, standard error %) as BALROG computes them: the population std over sqrt(n)."""
    n = len(progression)
    if n == 0:
        return 0.0, 0.0
    mean = sum(progression) / n
    if n == 1:
        return 100 * mean, 0.0
    std = math.sqrt(sum((x - mean) ** 2 for x in progression) / n)
    return 100 * mean, 100 * std / math.sqrt(n)


def overall(envs: list[tuple[float, float]]) -> tuple[float, float]:
    """BALROG's overall figure from per-env (mean %, error %): their mean, and sqrt(sum err^2) / K."""
    if not envs:
        return 0.0, 0.0
    return sum(m for m, _ in envs) / len(envs), math.sqrt(sum(e * e for _, e in envs)) / len(envs)


def published_figure(row: Published, env: str) -> Figure | None:
    return Figure(*row.envs[env]) if env in row.envs else None


def published_average(row: Published, envs: list[str]) -> Figure | None:
    """A published row's figure over `envs`, combined as BALROG combines envs; None when it lacks one."""
    if not all(e in row.envs for e in envs):
        return None
    errors = [row.envs[e][1] for e in envs]
    mean, error = overall([(row.envs[e][0], row.envs[e][1] or 0.0) for e in envs])
    return Figure(round(mean, 2), None if any(x is None for x in errors) else round(error, 2))


def parse_envs(text: str) -> list[str]:
    """`crafter,minihack,nethack` in the protocol's order, each once and known."""
    names = [n.strip() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in PROTOCOL]
    if unknown or not names:
        raise UserError(f"--envs {text!r}: give some of {', '.join(PROTOCOL)}, separated by commas")
    return [n for n in PROTOCOL if n in names]


def check(envs: list[str]) -> None:
    """Every env of the protocol can be made here: a missing game is one line before any episode."""
    for env in envs:
        try:
            make_env(env, resolve_task(env)).close()
        except ImportError as exc:
            raise UserError(f"{env} is not installed here ({exc}): ./scripts/setup installs every game, "
                            f"or leave it out with --envs") from None


def per_env(text: str | None, envs: list[str], option: str, limit: int) -> dict[str, int]:
    """`N` for every env or `ENV=N,...` for some, as {env: N} (the others keep BALROG's)."""
    if text is None:
        return {}
    try:
        if "=" not in text:
            counts = dict.fromkeys(envs, int(text))
        else:
            counts = {k.strip(): int(v) for k, v in (part.split("=", 1) for part in text.split(","))}
    except ValueError:
        counts = {}
    if not counts or not set(counts) <= set(envs) or not all(1 <= n <= limit for n in counts.values()):
        raise UserError(f"{option} {text!r}: give N, or ENV=N,... for envs of this run ({', '.join(envs)}), "
                        f"each N 1 to {limit}")
    return counts


def plan(envs: list[str], episodes: dict[str, int], max_steps: dict[str, int]) -> list[EnvProtocol]:
    """This run's protocol per env: BALROG's, with the counts given (never more steps than BALROG's)."""
    over = [f"{e}={n} (BALROG: {PROTOCOL[e].max_steps})" for e, n in max_steps.items() if n > PROTOCOL[e].max_steps]
    if over:
        raise UserError(f"--max-steps above BALROG's step limit: {', '.join(over)}; a figure beside BALROG's "
                        "cannot play longer episodes")
    return [msgspec.structs.replace(PROTOCOL[e], episodes=episodes.get(e, PROTOCOL[e].episodes),
                                    max_steps=max_steps.get(e, PROTOCOL[e].max_steps)) for e in envs]


def unplayable_nethack() -> list[str]:
    """The actions BALROG's NetHack prompt lists that automem's NetHack has no word for."""
    from automem.engine.agent.instructions import NETHACK
    from automem.engine.envs.nle_base import WORDS

    return [name for name in NETHACK if name not in WORDS]


def departures(chosen: list[EnvProtocol], agent: AgentSpec, seed: int, sampling: Sampling) -> list[str]:
    """Every setting of this run that differs from BALROG's, in words."""
    envs = [p.env for p in chosen]
    out = [f"seeds fixed: {seed}..{seed + max(p.episodes for p in chosen) - 1} for every task "
           "(BALROG draws a random seed per episode)"]
    if agent.kind == "memory":
        out.append("agent: automem's memory agent (LOG/PLAN over memory files), the paper's; not a BALROG agent")
    elif agent.kind == "none":
        out.append("agent: the current observation only (BALROG's naive agent keeps 16 steps of history)")
    elif agent.history != BALROG_HISTORY:
        out.append(f"history: {agent.history} observation/action pairs (BALROG's: {BALROG_HISTORY})")
    if not agent.has_memory:
        out.append("answers capped at 64 tokens (BALROG: 8192, its leaderboard 1024); no valid answer is longer, "
                   "since anything beyond the action's name makes an answer invalid")
    if sampling.temperature != BALROG_TEMPERATURE:
        out.append(f"sampling: {sampling.describe()} (BALROG's default: temperature {BALROG_TEMPERATURE:g}; its "
                   "leaderboard: temperature 0)")
    for p in chosen:
        balrog = PROTOCOL[p.env]
        if p.episodes != balrog.episodes:
            out.append(f"{p.env}: {p.episodes} episodes per task (BALROG: {balrog.episodes})")
        if p.max_steps != balrog.max_steps:
            out.append(f"{p.env}: at most {p.max_steps} steps per episode (BALROG: {balrog.max_steps})")
    if "crafter" in envs:
        if agent.observation == "balrog":
            out.append("crafter: BALROG's text, but the first observation is the world at reset (BALROG's wrapper "
                       "takes one Noop step first)")
        else:
            out.append("crafter: automem's observation text, not BALROG's (run with --observation balrog for its)")
    if "minihack" in envs:
        out.append("minihack: river and room-ultimate-15x15 stand in for Boxoban Medium and Hard (Boxoban's levels "
                   "are a download)")
    for env in (e for e in ("minihack", "nethack") if e in envs):
        if agent.observation == "balrog":
            out.append(f"{env}: BALROG's text, but a --More-- page is passed when the game waits for a key with "
                       "--More-- on the screen (BALROG's AutoMore: when its message text shows --More--)")
        else:
            out.append(f"{env}: automem's observation text, not BALROG's (run with --observation balrog for its)")
    if "nethack" in envs:
        if not agent.has_memory:
            out.append(f"nethack: BALROG's prompt lists actions automem's NetHack does not take "
                       f"({', '.join(unplayable_nethack())}): an answer naming one runs esc, as BALROG's own env does "
                       "for most of them")
    return out


def run(log: EventLog, data: Path, player: Player, policy: str, agent: AgentSpec, chosen: list[EnvProtocol],
        seed: int = 0, sampling: Sampling = Sampling(), structure: str = "auto", concurrency: int = 1,
        every_row: bool = False) -> ProtocolResult:
    """The protocol's episodes for the `chosen` envs (those already stored reused), and its
    figures beside the published rows of the same model (`every_row`: all of them)."""
    results: list[EnvResult] = []
    exact: list[tuple[float, float]] = []
    model = ""
    for protocol in chosen:
        env, n, steps = protocol.env, protocol.episodes, protocol.max_steps
        seeds = list(range(seed, seed + n))
        tasks = []
        for task in protocol.tasks:
            req = RunRequest(env=env, task=task, episodes=n, max_steps=steps, seed=seed, policy=policy,
                             structure=structure, sampling=sampling, agent=agent,
                             concurrency=concurrency)
            req.check()
            played, reused = player.episodes(log, data, req, seeds)
            tasks.append(_task(log, task, seeds, played, reused))
            model = model or read_episode(log, played[0]).start.models.get("agent", "")
        mean, error = stats([p for t in tasks for p in t.progression])
        exact.append((mean, error))
        results.append(EnvResult(env=env, max_steps=steps, tasks=tasks, progression=round(mean, 2),
                                 standard_error=round(error, 2), episodes=n * len(tasks)))
    average, error = overall(exact)  # from the unrounded figures, rounded once at the end
    envs = [p.env for p in chosen]
    shown = [row for row in (ROWS if every_row else matching(model)) if any(e in row.envs for e in envs)]
    return ProtocolResult(policy=policy, model=model, agent=agent.label(), sampling=sampling.describe(), envs=results,
                          average_progress=round(average, 2), standard_error=round(error, 2),
                          departures=departures(chosen, agent, seed, sampling),
                          published=shown, sources={row.source: SOURCES[row.source] for row in shown})


def _task(log: EventLog, task: str, seeds: list[int], episodes: list[str], reused: int) -> TaskResult:
    progression, steps = [], []
    for episode in episodes:
        last = read_episode(log, episode).events[-1]
        if not isinstance(last, EpisodeEnded) or last.cause.startswith("model_error"):
            cause = last.cause if isinstance(last, EpisodeEnded) else "it did not end"
            raise UserError(f"episode {episode} ({task}) did not finish ({cause}); the episodes that did are kept: "
                            "run the same command again to resume")
        progression.append(last.progression)
        steps.append(last.length)
    return TaskResult(task=task, seeds=seeds, episodes=episodes, progression=progression, steps=steps, reused=reused)
