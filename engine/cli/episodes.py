"""`automem replay | audit | envs | episodes | memory | show | report`: the recorded episodes
(and the games they are played in), read back for people and scripts."""

from __future__ import annotations

from typing import Annotated, Optional

import typer
from rich.table import Table

from automem.engine.cli.options import (
    BusOpt,
    DataOpt,
    EpisodeArg,
    JsonOpt,
    ScorerOpt,
    Stdout,
    TopPOpt,
    emit,
)
from automem.schemas.errors import UserError
from automem.schemas.limits import MAX_STEPS

episodes_app = typer.Typer()


def episodes_table(rows: list) -> Table:
    """Episode summaries for people (`automem run`, `automem episodes`)."""
    from automem.engine.policy.sampling import Sampling
    from automem.engine.views.terminal import markup

    table = Table("episode", "env", "task", "agent", "seed", "sampling", "steps", "return", "progression", "memory ops",
                  "status")
    table.columns[0].no_wrap = True
    for r in rows:
        table.add_row(markup(r.id), markup(r.env), markup(r.task), r.agent, str(r.seed),
                      Sampling(r.temperature, r.top_p).describe(), str(r.steps),
                      f"{r.return_:g}", f"{100 * r.progression:.1f}%",
                      "n/a" if r.memory_ops is None else str(r.memory_ops), r.status)
    return table


@episodes_app.command()
def replay(episode: EpisodeArg, data: DataOpt = None, bus: BusOpt = None, json: JsonOpt = False) -> None:
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


@episodes_app.command()
def audit(
    episode: EpisodeArg,
    failure: Annotated[Optional[int], typer.Option("--failure", help="Name the failing step instead of detecting it.")] = None,
    counterfactual: Annotated[bool, typer.Option("--counterfactual", help="Fork before the wrong write, without it, and re-run live.")] = False,
    policy: Annotated[Optional[str], typer.Option("--policy", help="The live model of the fork (same specs as `run`).")] = None,
    horizon: Annotated[Optional[int], typer.Option("--horizon", min=1, max=MAX_STEPS, help="Steps the fork plays after the write (default: past the failure).")] = None,
    temperature: Annotated[Optional[float], typer.Option("--temperature", help="The fork's sampling (default: as the parent sampled).")] = None,
    top_p: TopPOpt = None,
    data: DataOpt = None, bus: BusOpt = None, json: JsonOpt = False,
) -> None:
    """When did the first memory mistake happen? The failure, the earliest wrong write, the evidence chain."""
    from automem.engine.audit.with_fork import audit_with_fork
    from automem.engine.policy.sampling import check_sampling

    if counterfactual != (policy is not None):
        raise UserError("--counterfactual needs --policy SPEC (the model that plays after the fork), and --policy "
                        "is only for --counterfactual")
    if not counterfactual and (horizon, temperature, top_p) != (None, None, None):
        raise UserError("--horizon, --temperature and --top-p are for the fork: give them with --counterfactual --policy SPEC")
    sampling = None if (temperature, top_p) == (None, None) else check_sampling(temperature, top_p)
    result = audit_with_fork(bus, data, episode, failure, policy, horizon, sampling)
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


@episodes_app.command()
def envs(json: JsonOpt = False) -> None:
    """The games and their tasks."""
    from automem.engine.envs import TASKS

    table = Table("env", "tasks")
    for name, tasks in TASKS.items():
        table.add_row(name, ", ".join(tasks))
    emit({"envs": TASKS}, json, table)


@episodes_app.command()
def episodes(data: DataOpt = None, bus: BusOpt = None, json: JsonOpt = False) -> None:
    """List episodes with their summaries."""
    from automem.engine.episodes.summary import list_episodes
    from automem.engine.log import open_log

    with open_log(bus, data, create=False) as log:
        rows = list_episodes(log)
    emit({"episodes": rows}, json, episodes_table(rows))


@episodes_app.command()
def memory(
    episode: EpisodeArg,
    at: Annotated[Optional[int], typer.Option("--at", help="Show memory as it was after this step.")] = None,
    diff: Annotated[Optional[tuple[int, int]], typer.Option("--diff", help="A B: what changed from after step A to after step B.")] = None,
    file: Annotated[Optional[str], typer.Option("--file", help="Only this memory file.")] = None,
    data: DataOpt = None, bus: BusOpt = None, json: JsonOpt = False,
) -> None:
    """Memory after a step (nearest snapshot + tail of the log), or the diff between two steps."""
    from automem.engine.episodes.memory_view import memory_changes, memory_files
    from automem.engine.log import open_log, open_store
    from automem.engine.log.lmdb.snapshots import SnapshotStore
    from automem.engine.views.terminal import markup, safe

    if (at is None) == (diff is None):
        raise UserError("give exactly one of --at STEP or --diff A B")
    with open_log(bus, data, create=False) as log, open_store(bus, data) as store:
        if diff is not None:
            a, b, changes = memory_changes(log, SnapshotStore(store), episode, diff, file)
        elif at is not None:
            files = memory_files(log, SnapshotStore(store), episode, at, file)
    if diff is not None:
        if json:
            emit({"episode": episode, "from": a, "to": b, "files": changes}, True)
            return
        for name, change in changes.items():
            print(safe(f"== {name} ({change.status}) by " + ", ".join(f"step {o.step} {o.op.upper()}" for o in change.ops)))
            print("\n".join(map(safe, change.diff)))
        return
    if json:
        emit({"episode": episode, "step": at, "files": files}, True)
        return
    con = Stdout()
    for name, content in files.items():
        con.rule(markup(f"{name} ({len(content.encode(errors='surrogateescape'))} bytes)"))
        con.print(safe(content), markup=False, highlight=False)


@episodes_app.command()
def show(
    episode: EpisodeArg,
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


@episodes_app.command()
def report(
    episode: EpisodeArg,
    output: Annotated[str, typer.Option("-o", "--output", help="The HTML file to write (its folder must exist).")],
    no_audit: Annotated[bool, typer.Option("--no-audit", help="Leave the audit out of the page.")] = False,
    failure: Annotated[Optional[int], typer.Option("--failure", help="The audit's failure step (as `automem audit --failure`).")] = None,
    scorer: ScorerOpt = None,
    data: DataOpt = None, bus: BusOpt = None, json: JsonOpt = False,
) -> None:
    """One self-contained HTML page of an episode: timeline, memory per step, audit, progression, scores."""
    from automem.engine.episodes.read import require_episode
    from automem.engine.files import write_file
    from automem.engine.log import open_log
    from automem.engine.views.outputs import output_file, store_folders
    from automem.engine.views.report import audited_report

    path = output_file(output, store_folders(bus, data), f"{episode}.html")
    if no_audit and failure is not None:
        raise UserError("--failure names the audit's failure step: it cannot go with --no-audit")
    with open_log(bus, data, create=False) as log:
        require_episode(log, episode)
        page = audited_report(log, episode, failure, scorer, run_audit=not no_audit)
    write_file(path, page, "the report page")
    size = path.stat().st_size
    if json:
        emit({"episode": episode, "path": str(path), "bytes": size}, True)
    else:
        print(f"{path} ({size / 1024:.0f} KiB)")
