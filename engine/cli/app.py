"""The `automem` command line (typer). Thin: parse, call the engine, print.

Exit status: 0 success; 2 bad input with one line on stderr; 3 a replay that diverged;
1 a bug. `--json` prints one JSON document on stdout as the last thing printed.
"""

from __future__ import annotations

import os
import sys
from typing import Annotated, Any, NoReturn, Optional

import msgspec
import typer
from rich.console import Console
from rich.table import Table

from automem.engine.rollout.limits import (
    MAX_CONCURRENCY,
    MAX_EPISODES,
    MAX_SEED,
    MAX_STEPS,
    MAX_WORKERS,
)
from automem.schemas.errors import UserError

app = typer.Typer(
    add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
    help="automem: LLM agents that learn to manage their own memory, on an event-sourced log.",
)
err = Console(stderr=True)


class Stdout(Console):
    """A console on stdout whose reader may go away: rich would exit 1 there; `main` ends quietly."""

    def on_broken_pipe(self) -> None:
        raise BrokenPipeError

DataOpt = Annotated[Optional[str], typer.Option("--data", help="Embedded store folder (default ./automem-data or $AUTOMEM_DATA).")]
BusOpt = Annotated[Optional[str], typer.Option("--bus", help="lmdb://DIR (default) or kafka://HOST:PORT[,...].")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON document on stdout.")]
TemperatureOpt = Annotated[Optional[float], typer.Option(
    "--temperature", help="Sampling temperature, 0 (greedy, the default) to 2; each call's seed follows from the episode seed.")]
TopPOpt = Annotated[Optional[float], typer.Option("--top-p", help="Nucleus sampling mass in (0, 1] (default 1).")]
EpisodesOpt = Annotated[int, typer.Option("--episodes", min=1, max=MAX_EPISODES, help="Episodes, seeds SEED, SEED+1, ...")]
MaxStepsOpt = Annotated[int, typer.Option("--max-steps", min=1, max=MAX_STEPS)]
SeedOpt = Annotated[int, typer.Option("--seed", min=0, max=MAX_SEED, help="Seed of the first episode.")]
ScorerOpt = Annotated[Optional[str], typer.Option("--scorer", help="Scores of this scorer version (default: the latest).")]
ConcurrencyOpt = Annotated[int, typer.Option(
    "--concurrency", min=1, max=MAX_CONCURRENCY,
    help="Episodes in flight per process, their model calls batched (local: one decode batch; openai: requests in flight).")]
MemoryPolicyOpt = Annotated[Optional[str], typer.Option("--memory-policy", help="A second model for LOG and PLAN lookups.")]


def emit(doc: Any, as_json: bool, table: Table | None = None) -> None:
    """Print the result: JSON for scripts, a table for people."""
    if as_json:
        sys.stdout.write(msgspec.json.encode(doc).decode() + "\n")
    elif table is not None:
        console = Stdout()
        if not console.is_terminal:
            console = Stdout(width=160)  # piped output: do not squeeze ids into 80 columns
        console.print(table)
    else:
        sys.stdout.write(msgspec.json.format(msgspec.json.encode(doc)).decode() + "\n")


def _print_version(value: bool) -> None:
    if value:
        from automem.schemas.version import ENGINE_VERSION

        print(f"automem {ENGINE_VERSION}")
        raise typer.Exit()


@app.callback()
def _options(
    version: Annotated[bool, typer.Option("--version", callback=_print_version, is_eager=True,
                                          help="Print the version and exit.")] = False,
) -> None:
    """automem: LLM agents that learn to manage their own memory, on an event-sourced log."""


def _episodes_table(rows: list) -> Table:
    from automem.engine.policy.sampling import Sampling
    from automem.engine.views.terminal import markup

    table = Table("episode", "env", "task", "seed", "sampling", "steps", "return", "progression", "memory ops", "status")
    table.columns[0].no_wrap = True
    for r in rows:
        table.add_row(markup(r.id), markup(r.env), markup(r.task), str(r.seed),
                      Sampling(r.temperature, r.top_p).describe(), str(r.steps),
                      f"{r.return_:g}", f"{100 * r.progression:.1f}%", str(r.memory_ops), r.status)
    return table


@app.command()
def run(
    env: Annotated[str, typer.Option("--env", help="crafter | nethack | minihack")] = "crafter",
    task: Annotated[Optional[str], typer.Option("--task", help="Task of the env (minihack: see `automem envs`).")] = None,
    episodes: EpisodesOpt = 1, max_steps: MaxStepsOpt = 30, seed: SeedOpt = 0,
    policy: Annotated[str, typer.Option("--policy", help="local | local:PATH[+adapter:PATH] | openai:MODEL@URL | vllm:MODEL | file:PATH | random")] = "local",
    memory_policy: MemoryPolicyOpt = None,
    workers: Annotated[int, typer.Option("--workers", min=1, max=MAX_WORKERS)] = 1,
    concurrency: ConcurrencyOpt = 1,
    structure: Annotated[str, typer.Option("--structure", help="auto | v0 | v0-small | a stored version")] = "auto",
    temperature: TemperatureOpt = None, top_p: TopPOpt = None,
    data: DataOpt = None, bus: BusOpt = None, json: JsonOpt = False,
) -> None:
    """Run episodes, writing every event to the log; ends with a table and the JSON summary."""
    from automem.engine.policy.sampling import check_sampling
    from automem.engine.rollout.run import RunRequest
    from automem.engine.rollout.run import run as run_episodes

    rows = run_episodes(RunRequest(env=env, task=task, episodes=episodes, max_steps=max_steps, seed=seed,
                                   policy=policy, memory_policy=memory_policy, structure=structure,
                                   workers=workers, concurrency=concurrency, sampling=check_sampling(temperature, top_p), bus=bus, data=data))
    emit({"episodes": rows}, json, _episodes_table(rows))


@app.command()
def replay(
    episode: Annotated[str, typer.Argument(help="Episode id (see `automem episodes`).")],
    data: DataOpt = None, bus: BusOpt = None, json: JsonOpt = False,
) -> None:
    """Re-run an episode from its log without any model; exit 3 at the first divergence."""
    from automem.engine.episodes.replay import replay as replay_episode
    from automem.engine.log import open_log

    with open_log(bus, data, create=False) as log:
        result = replay_episode(log, episode)
    if json:
        emit(result, True)
    else:
        d = result.divergence
        verdict = "verified" if d is None else f"DIVERGED at step {d.step}, field {d.field}: expected {d.expected!r}, got {d.actual!r}"
        tail = "" if result.ended else " (the log ends before the episode did: a crashed run)"
        print(f"{episode}: {result.verified}/{result.steps} steps verified; {verdict}{tail}")
    if result.divergence is not None:
        raise typer.Exit(3)


@app.command()
def audit(
    episode: Annotated[str, typer.Argument(help="Episode id (see `automem episodes`).")],
    failure: Annotated[Optional[int], typer.Option("--failure", help="Name the failing step instead of detecting it.")] = None,
    counterfactual: Annotated[bool, typer.Option("--counterfactual", help="Fork before the wrong write, without it, and re-run live.")] = False,
    policy: Annotated[Optional[str], typer.Option("--policy", help="The live model of the fork (same specs as `run`).")] = None,
    horizon: Annotated[Optional[int], typer.Option("--horizon", min=1, max=MAX_STEPS, help="Steps the fork plays after the write (default: past the failure).")] = None,
    temperature: Annotated[Optional[float], typer.Option("--temperature", help="The fork's sampling (default: as the parent sampled).")] = None,
    top_p: TopPOpt = None,
    data: DataOpt = None, bus: BusOpt = None, json: JsonOpt = False,
) -> None:
    """When did the first memory mistake happen? The failure, the earliest wrong write, the evidence chain."""
    from automem.engine.audit import audit as run_audit
    from automem.engine.log import open_log
    from automem.engine.policy.sampling import check_sampling

    if counterfactual != (policy is not None):
        raise UserError("--counterfactual needs --policy SPEC (the model that plays after the fork), and --policy "
                        "is only for --counterfactual")
    if not counterfactual and (horizon, temperature, top_p) != (None, None, None):
        raise UserError("--horizon, --temperature and --top-p are for the fork: give them with --counterfactual --policy SPEC")
    sampling = None if (temperature, top_p) == (None, None) else check_sampling(temperature, top_p)
    with open_log(bus, data, create=False) as log:
        result = run_audit(log, episode, failure)
    if counterfactual:  # the fork is a new episode: only now, with the audit done, open the log for writing
        from automem.engine.audit.counterfactual import fork
        from automem.engine.log import local_folder
        from automem.engine.models.load import load_policy

        with open_log(bus, data) as log:
            live = load_policy(policy or "", log, local_folder(bus, data))
            result.counterfactual = fork(log, result, live, horizon, sampling=sampling)
    if json:
        emit(result, True)
        return
    from automem.engine.views.terminal import markup, safe

    f, m = result.failure, result.first_mistake
    print(safe(f"{episode}: " + (f"failure at step {f.step} ({f.rule}): {f.detail}" if f else "no failure found")))
    print(safe(f"first mistake: step {m.step} {m.phase} turn {m.turn}, {m.op.upper()} {m.file}|{m.content[:80]} "
               f"({m.kind}): {m.evidence}" if m else f"first mistake: none ({result.reason})"))
    if result.chain:
        table = Table("step", "phase", "kind", "detail", title="evidence chain")
        for link in result.chain:
            table.add_row(str(link.step), f"{link.phase} {link.turn}" if link.phase else "", link.kind, markup(link.detail))
        emit(None, False, table)
    c = result.counterfactual
    if c is not None:
        print(safe(f"counterfactual {c.episode} (from step {c.fork_step}, {c.steps} steps): "
                   f"{ {True: 'the failure recurs', False: 'the failure does not recur', None: 'undetermined'}[c.failure_recurs]}; "
                   f"{c.detail}"))


@app.command()
def envs(json: JsonOpt = False) -> None:
    """The games and their tasks."""
    from automem.engine.envs import TASKS

    table = Table("env", "tasks")
    for name, tasks in TASKS.items():
        table.add_row(name, ", ".join(tasks))
    emit({"envs": TASKS}, json, table)


@app.command()
def episodes(data: DataOpt = None, bus: BusOpt = None, json: JsonOpt = False) -> None:
    """List episodes with their summaries."""
    from automem.engine.episodes.summary import list_episodes
    from automem.engine.log import open_log

    with open_log(bus, data, create=False) as log:
        rows = list_episodes(log)
    emit({"episodes": rows}, json, _episodes_table(rows))


@app.command()
def memory(
    episode: Annotated[str, typer.Argument(help="Episode id (see `automem episodes`).")],
    at: Annotated[Optional[int], typer.Option("--at", help="Show memory as it was after this step.")] = None,
    diff: Annotated[Optional[tuple[int, int]], typer.Option("--diff", help="A B: what changed from after step A to after step B.")] = None,
    file: Annotated[Optional[str], typer.Option("--file", help="Only this memory file.")] = None,
    data: DataOpt = None, bus: BusOpt = None, json: JsonOpt = False,
) -> None:
    """Memory after a step (nearest snapshot + tail of the log), or the diff between two steps."""
    from automem.engine.episodes.memory_diff import memory_diff
    from automem.engine.episodes.summary import require_episode
    from automem.engine.episodes.timeline import check_step, last_step
    from automem.engine.episodes.timetravel import memory_after_step
    from automem.engine.log import open_log, open_store
    from automem.engine.log.lmdb.snapshots import SnapshotStore
    from automem.engine.views.terminal import markup, safe

    if (at is None) == (diff is None):
        raise UserError("give exactly one of --at STEP or --diff A B")
    with open_log(bus, data, create=False) as log, open_store(bus, data) as store:
        require_episode(log, episode)
        final = last_step(log, episode)
        for step in ([at] if diff is None else list(diff)):
            check_step(episode, final, step)
        if diff is not None:
            a, b = sorted(diff)
            changes = memory_diff(log, SnapshotStore(store), episode, a, b)
            if file is not None:
                changes = {k: v for k, v in changes.items() if k == file}
            if json:
                emit({"episode": episode, "from": a, "to": b, "files": changes}, True)
                return
            for name, change in changes.items():
                print(safe(f"== {name} ({change.status}) by " + ", ".join(f"step {o.step} {o.op.upper()}" for o in change.ops)))
                print("\n".join(map(safe, change.diff)))
            return
        files = memory_after_step(log, SnapshotStore(store), episode, at).contents()
    if file is not None:
        if file not in files:
            raise UserError(f"no file {file!r} in {episode} after step {at}; files: {', '.join(files) or '(none)'}")
        files = {file: files[file]}
    if json:
        emit({"episode": episode, "step": at, "files": files}, True)
        return
    con = Stdout()
    for name, content in files.items():
        con.rule(markup(f"{name} ({len(content.encode(errors='surrogateescape'))} bytes)"))
        con.print(safe(content), markup=False, highlight=False)


@app.command()
def show(
    episode: Annotated[str, typer.Argument(help="Episode id (see `automem episodes`).")],
    start: Annotated[Optional[int], typer.Option("--from", help="First step to show (default 0).")] = None,
    end: Annotated[Optional[int], typer.Option("--to", help="Last step to show (default the episode's last).")] = None,
    scorer: ScorerOpt = None,
    data: DataOpt = None, bus: BusOpt = None, json: JsonOpt = False,
) -> None:
    """The trace of one episode for people: per step the action, reward, model calls, memory ops, outcomes, scores."""
    from automem.engine.log import open_log
    from automem.engine.views.show import render, show_trace

    with open_log(bus, data, create=False) as log:
        result = show_trace(log, episode, start, end, scorer)
    if json:
        emit(result, True)
    else:
        render(result, Stdout())


@app.command()
def report(
    episode: Annotated[str, typer.Argument(help="Episode id (see `automem episodes`).")],
    output: Annotated[str, typer.Option("-o", "--output", help="The HTML file to write (its folder must exist).")],
    no_audit: Annotated[bool, typer.Option("--no-audit", help="Leave the audit out of the page.")] = False,
    failure: Annotated[Optional[int], typer.Option("--failure", help="The audit's failure step (as `automem audit --failure`).")] = None,
    scorer: ScorerOpt = None,
    data: DataOpt = None, bus: BusOpt = None, json: JsonOpt = False,
) -> None:
    """One self-contained HTML page of an episode: timeline, memory per step, audit, progression, scores."""
    from automem.engine.episodes.summary import require_episode
    from automem.engine.log import open_log
    from automem.engine.views.outputs import output_file, store_folders
    from automem.engine.views.report import audited_report

    path = output_file(output, store_folders(bus, data), f"{episode}.html")
    if no_audit and failure is not None:
        raise UserError("--failure names the audit's failure step: it cannot go with --no-audit")
    with open_log(bus, data, create=False) as log:
        require_episode(log, episode)
        page = audited_report(log, episode, failure, scorer, run_audit=not no_audit)
    try:
        path.write_text(page, encoding="utf-8")
    except OSError as exc:
        raise UserError(f"cannot write {output}: {exc.strerror or exc}") from None
    size = path.stat().st_size
    if json:
        emit({"episode": episode, "path": str(path), "bytes": size}, True)
    else:
        print(f"{path} ({size / 1024:.0f} KiB)")


@app.command()
def submit(
    env: Annotated[str, typer.Option("--env")] = "crafter",
    task: Annotated[Optional[str], typer.Option("--task")] = None,
    episodes: EpisodesOpt = 1, max_steps: MaxStepsOpt = 30, seed: SeedOpt = 0,
    policy: Annotated[str, typer.Option("--policy", help="Used by workers started without --policy.")] = "random",
    memory_policy: MemoryPolicyOpt = None,
    structure: Annotated[str, typer.Option("--structure")] = "auto",
    temperature: TemperatureOpt = None, top_p: TopPOpt = None,
    data: DataOpt = None, bus: BusOpt = None, json: JsonOpt = False,
) -> None:
    """Publish rollout requests for workers (`automem worker`) to run."""
    from automem.engine.log import open_log
    from automem.engine.policy.sampling import check_sampling
    from automem.engine.policy.spec import parse_spec
    from automem.engine.rollout.bus import submit as submit_requests
    from automem.engine.rollout.run import RunRequest

    for spec in filter(None, (policy, memory_policy)):
        parse_spec(spec)
    req = RunRequest(env=env, task=task, episodes=episodes, max_steps=max_steps, seed=seed, policy=policy,
                     memory_policy=memory_policy, structure=structure, sampling=check_sampling(temperature, top_p))
    with open_log(bus, data) as log:
        ids = submit_requests(log, req)
    emit({"requests": ids}, json, None)


@app.command()
def worker(
    policy: Annotated[Optional[str], typer.Option("--policy", help="Overrides the policy named in requests.")] = None,
    memory_policy: Annotated[Optional[str], typer.Option("--memory-policy", help="Overrides the memory policy named in requests.")] = None,
    until_idle: Annotated[bool, typer.Option("--until-idle", help="Exit once no request is waiting.")] = False,
    concurrency: ConcurrencyOpt = 1,
    data: DataOpt = None, bus: BusOpt = None, json: JsonOpt = False,
) -> None:
    """A rollout worker: takes requests in a consumer group; one completed episode each."""
    import threading

    from automem.consumers.runtime import stop_on_signals
    from automem.engine.log import local_folder, open_log
    from automem.engine.rollout.bus import Worker

    stop = threading.Event()
    stop_on_signals(stop)
    with open_log(bus, data) as log:
        handled = Worker(log, policy, memory_policy_spec=memory_policy, data=local_folder(bus, data),
                         concurrency=concurrency).run(stop, until_idle=until_idle)
    emit({"handled": handled}, json, None)


@app.command()
def rollouts(data: DataOpt = None, bus: BusOpt = None, json: JsonOpt = False) -> None:
    """Requests with their one completed episode (or none yet) and how many attempts they took."""
    from automem.engine.log import open_log
    from automem.engine.rollout.bus import status

    with open_log(bus, data, create=False) as log:
        rows = status(log)
    from automem.engine.views.terminal import markup

    table = Table("request", "episode", "attempts")
    for r in rows:
        table.add_row(markup(r["request"]), markup(r["episode"] or "-"), str(r["attempts"]))
    emit({"rollouts": rows}, json, table)


@app.command()
def consume(
    name: Annotated[str, typer.Argument(help="materializer | scorer | trainer | publisher")],
    until_idle: Annotated[bool, typer.Option("--until-idle", help="Exit once caught up instead of following.")] = False,
    every: Annotated[int, typer.Option("--snapshot-every", min=1, max=1 << 30, help="materializer: write-ops between snapshots.")] = 64,
    vllm: Annotated[Optional[str], typer.Option("--vllm", help="publisher: the vLLM server (http://HOST:PORT).")] = None,
    adapter_root: Annotated[Optional[str], typer.Option("--adapter-root", help="publisher: the adapters' folder as the vLLM host sees it.")] = None,
    data: DataOpt = None, bus: BusOpt = None, json: JsonOpt = False,
) -> None:
    """Run a consumer service over the log; its state and position live in --data."""
    from automem.consumers import make_consumer
    from automem.consumers.runtime import run_consumer
    from automem.engine.log import local_folder, open_log, open_store

    consumer = make_consumer(name, local_folder(bus, data), every=every, vllm=vllm, adapter_root=adapter_root)
    with open_log(bus, data) as log, open_store(bus, data) as store:
        stats = run_consumer(consumer, log, store, until_idle=until_idle)
    emit(stats, json, None)


@app.command()
def score(
    episodes: Annotated[Optional[list[str]], typer.Argument(help="Episode ids (default: every episode in the store).")] = None,
    env: Annotated[Optional[str], typer.Option("--env", help="Only episodes of this game.")] = None,
    judge: Annotated[Optional[str], typer.Option("--judge", help="A model (any --policy spec) that also grades a sample, kept apart.")] = None,
    judge_sample: Annotated[int, typer.Option("--judge-sample", min=1, max=100_000, help="Answers per episode the judge grades.")] = 20,
    data: DataOpt = None, bus: BusOpt = None, json: JsonOpt = False,
) -> None:
    """Score memory decisions by rule, retroactively, as their outcomes surface (loop 2, step 1)."""
    from automem.engine.episodes.summary import require_episode
    from automem.engine.log import open_log
    from automem.engine.scoring import score_episodes
    from automem.schemas.streams import episode_stream

    with open_log(bus, data, create=False) as log:
        for episode in episodes or []:
            require_episode(log, episode)
        chosen = episodes or [s.split("/", 1)[1] for s in log.streams("ep")]
        if env is not None:
            chosen = [e for e in chosen if _episode_env(log, episode_stream(e)) == env]
        if not chosen:
            raise UserError("no episodes to score" + (f" of env {env!r}" if env else "") + ": run `automem run` first")
    if judge is not None:
        from automem.engine.policy.spec import parse_spec

        parse_spec(judge)
    with open_log(bus, data) as log:  # the scores are appended: only now, with the input checked, for writing
        report = score_episodes(log, chosen, judge=judge, judge_sample=judge_sample)
    if json:
        emit(report, True)
    else:
        print(f"scorer {report.scorer}: {report.scored} new scores over {report.episodes} episode(s), "
              f"{report.decisions} final; {report.pending} episode(s) still running or cut short"
              + "".join(f"; skipped {n}: {reason}" for reason, n in sorted(report.skipped.items())))
        if report.judge is not None:
            print(f"judge {report.judge}: {report.judged} grades written, {report.ungraded} answers without a grade"
                  + (f"; stopped: {report.judge_unavailable}" if report.judge_unavailable else ""))



def _episode_env(log: Any, stream: str) -> str:
    first = next(iter(log.read_stream(stream)), None)
    return getattr(first.event, "env", "") if first is not None else ""


@app.command("eval")
def eval_command(
    model: Annotated[str, typer.Option("--model", help="The version to evaluate (see `automem models`).")],
    env: Annotated[str, typer.Option("--env", help="crafter | nethack | minihack")],
    seeds: Annotated[str, typer.Option("--seeds", help="Held-out seeds: A-B or A,B,C (disjoint from its dataset's).")],
    task: Annotated[Optional[str], typer.Option("--task")] = None,
    max_steps: MaxStepsOpt = 30,
    policy: Annotated[str, typer.Option("--policy", help="The base model that commits the actions.")] = "local",
    structure: Annotated[str, typer.Option("--structure")] = "auto",
    metric: Annotated[str, typer.Option("--metric", help="progression, or a proficiency figure.")] = "progression",
    promote: Annotated[bool, typer.Option("--promote", help="Promote the version if it beats the incumbent.")] = False,
    data: DataOpt = None, bus: BusOpt = None, json: JsonOpt = False,
) -> None:
    """A model version against the promoted one (or the base alone) on the same held-out seeds; optionally promote it."""
    from automem.engine.evaluation import evaluate
    from automem.engine.log import local_folder, open_log
    from automem.engine.models.registry import resolve
    from automem.engine.rollout.limits import parse_seeds

    chosen = parse_seeds(seeds)
    with open_log(bus, data, create=False) as log:
        resolve(log, model)  # the version must exist before anything is written
    with open_log(bus, data) as log:
        result = evaluate(log, local_folder(bus, data), model, env, task, chosen, max_steps, policy, structure,
                          metric, promote)
    if json:
        emit(result, True)
        return
    table = Table("", "models", "mean progression", *result.candidate["figures"], title=f"{result.model} on {env} seeds {seeds}")  # type: ignore[arg-type]
    for label, side in (("candidate", result.candidate), ("incumbent", result.incumbent)):
        table.add_row(label, _models_cell(side["models"]), f"{side['mean_progression']:.3f}",  # type: ignore[index]
                      *(f"{v:.3f}" for v in side["figures"].values()))  # type: ignore[union-attr,index]
    emit(None, False, table)
    print(f"{result.metric}: mean paired difference {result.mean_difference:+.4f}, 95% bootstrap interval "
          f"[{result.interval[0]:+.4f}, {result.interval[1]:+.4f}] over {len(result.seeds)} seeds; {result.decision}")


def _models_cell(models: dict[str, str]) -> str:
    from automem.engine.views.terminal import markup

    return markup(", ".join(f"{role}={name}" for role, name in models.items()))


@app.command()
def bench(
    name: Annotated[str, typer.Argument(help="eventlog | memory | overhead | replay | rollout | score | train | loop2 | learning")],
    env: Annotated[Optional[str], typer.Option("--env", help="Game, for benchmarks that run one.")] = None,
    policy: Annotated[Optional[str], typer.Option("--policy", help="rollout: the policy (default local; serve / serve-plain: the embedded model behind transformers serve, with / without continuous batching).")] = None,
    concurrency: Annotated[Optional[str], typer.Option("--concurrency", help="rollout: episodes in flight to measure, e.g. 1,4,8.")] = None,
    bus: BusOpt = None, json: JsonOpt = False,
) -> None:
    """Benchmarks: figures as ratios against a baseline run in the same process."""
    from automem.bench import BENCHES, BenchArgs
    from automem.engine.rollout.limits import check_concurrency

    if name not in BENCHES:
        raise UserError(f"unknown benchmark {name!r}: one of {', '.join(sorted(BENCHES))}")
    try:
        levels = tuple(int(c) for c in concurrency.split(",")) if concurrency else ()
    except ValueError:
        raise UserError(f"--concurrency {concurrency!r}: give counts separated by commas, e.g. 1,4,8") from None
    for level in levels:
        check_concurrency(level)
    if policy is not None and policy not in ("serve", "serve-plain"):
        from automem.engine.policy.spec import parse_spec

        parse_spec(policy)
    err.print(f"[dim]running bench {name} ...[/dim]")
    emit(BENCHES[name](BenchArgs(env=env, bus=bus, policy=policy, concurrency=levels)), json)


def _fail(message: str, status: int = 2) -> NoReturn:
    from automem.engine.views.terminal import safe

    err.print(f"automem: error: {safe(' '.join(message.split()))}", markup=False, highlight=False, soft_wrap=True)
    sys.exit(status)


def _usage_error() -> type[Exception]:
    """click's exception base as typer uses it (recent typer carries its own copy of click)."""
    return next(c for c in typer.BadParameter.__mro__ if c.__name__ == "ClickException")


from automem.engine.cli.store import store_app  # noqa: E402  (it imports the options above)

app.add_typer(store_app, name="store")
from automem.engine.cli.dataset import dataset_app  # noqa: E402

app.add_typer(dataset_app, name="dataset")
from automem.engine.cli.structure import evolve, structure_app  # noqa: E402

app.add_typer(structure_app, name="structure")
app.command("evolve")(evolve)
from automem.engine.cli.loop import loop_app  # noqa: E402

app.add_typer(loop_app, name="loop")
from automem.engine.cli.train import register as _register_train  # noqa: E402

_register_train(app)


def main(argv: list[str] | None = None) -> None:
    """Console-script entry: every user error, usage errors included, becomes one line on
    stderr and exit status 2; a reader that closes the pipe early ends the command quietly."""
    args = sys.argv[1:] if argv is None else argv
    for arg in args:
        try:
            arg.encode("utf-8")
        except UnicodeEncodeError:
            _fail(f"argument {arg.encode('utf-8', 'surrogateescape')!r} is not valid UTF-8: "
                  "give episode ids, paths and specs as UTF-8 text")
    try:
        status = app(args, prog_name="automem", standalone_mode=False)
        sys.stdout.flush()
    except UserError as exc:
        _fail(str(exc))
    except _usage_error() as exc:
        if not exc.format_message():  # `automem` alone: the help it printed is the answer
            sys.exit(exc.exit_code)
        hint = f" (see `automem {exc.ctx.info_name} --help`)" if getattr(exc, "ctx", None) and exc.ctx.info_name != "automem" \
            else " (see `automem --help`)"
        _fail(exc.format_message() + hint, exc.exit_code)
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit
        sys.exit(0)
    except KeyboardInterrupt:
        _fail("interrupted", 130)
    sys.exit(status if isinstance(status, int) else 0)
