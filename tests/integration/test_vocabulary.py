"""The vocabulary a reviewer reshapes without code: new primitives through the whole engine
(parser, prompts, agent, replay, snapshots, provenance, scorer, report), derived files and
the line cap, placeholders that cannot fail, and validation of hostile structures."""

from __future__ import annotations

import json
from pathlib import Path

import msgspec
import pytest

from automem.engine.agent.parser import parse, vocabulary
from automem.engine.agent.prompts import command_help, render, system_prompts
from automem.engine.audit import provenance
from automem.engine.episodes.replay import replay
from automem.engine.episodes.timetravel import memory_after_step
from automem.engine.log import LmdbLog
from automem.engine.log.lmdb.snapshots import SnapshotStore
from automem.engine.memory import EMPTY, WRITE_KINDS, apply
from automem.engine.rollout.request import RunRequest
from automem.engine.rollout.run import run
from automem.engine.scoring.credit import score
from automem.engine.scoring.params import Params
from automem.engine.structure.check import check_structure, validate
from automem.engine.structure.registry import register_structure, stored_structures
from automem.engine.structure.seeds import VOCABULARY, v0
from automem.engine.views.report import gather
from automem.schemas.codec import decode_event
from automem.schemas.errors import UserError
from automem.schemas.events import EnvFacts, MemoryOp, MemoryOpApplied, StepTaken
from automem.schemas.structure import (
    Command,
    DerivedFile,
    MemoryLimits,
    Structure,
    agent_limits,
    encode_structure,
    structure_version,
)

from ..support.cli import automem
from ..support.memory import _trace

FIXTURE = Path(__file__).parents[1] / "fixtures" / "old_episode.msgpack"

EVOLVED_COMMANDS = (
    Command(tag="HEAD", kind="head", params=("file", "n"), help="the first n lines"),
    Command(tag="GREP", kind="grep", params=("file", "pattern"), help="lines matching a regular expression"),
    Command(tag="RENAME", kind="rename", params=("file", "new_name"), phases=("log",), help="rename a file"),
    Command(tag="UPSERT_MAP", kind="upsert", params=("key", "text"), phases=("log",), file="map_notes.txt",
            help="replace the map line for a coordinate x,y"),
)


def evolved(cap: int = 3) -> Structure:
    """v0 for Crafter plus the new primitives, a status file and a line cap."""
    base = v0("crafter")
    return msgspec.structs.replace(
        base, name="evolved", commands=base.commands + EVOLVED_COMMANDS, max_log_turns=2, max_plan_turns=2,
        derived=(DerivedFile(name="status.txt", shows=("position", "vitals", "inventory", "achievements", "level")),),
        limits=msgspec.structs.replace(base.limits, max_file_lines=cap))


ANSWERS = [
    # step 0: PLAN
    "<|GREP|>*|^#.*(x|y)<|END|><|HEAD|>strategy.txt|1<|END|><|READ|>status.txt<|END|><|ACTION|>Move Left<|END|>",
    # step 1: LOG (two turns), PLAN
    "<|UPSERT_MAP|>3,4|tree<|END|><|UPSERT_MAP|>3,4|table<|END|><|APPEND|>actions_log.txt|one<|END|>"
    "<|APPEND|>actions_log.txt|two<|END|><|APPEND|>actions_log.txt|three<|END|><|APPEND|>status.txt|mine<|END|>",
    "<|RENAME|>survival_log.txt|vitals_log.txt<|END|><|DONE|>",
    "<|TAIL|>actions_log.txt|5<|END|><|ACTION|>Noop<|END|>",
    # step 2: LOG, PLAN (a RENAME is refused in PLAN)
    "<|APPEND|>vitals_log.txt|health fine<|END|><|DONE|>",
    "<|RENAME|>map_notes.txt|m.txt<|END|><|GREP|>map_notes.txt|\\d+,\\d+: t<|END|><|ACTION|>Noop<|END|>",
    # step 3: LOG, PLAN
    "<|APPEND|>actions_log.txt|four<|END|><|DONE|>",
    "<|READ|>vitals_log.txt<|END|><|ACTION|>Noop<|END|>",
]


@pytest.fixture(scope="module")
def episode(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    """One Crafter episode under `evolved()`, scripted by a file policy."""
    root = tmp_path_factory.mktemp("vocabulary")
    answers = root / "answers.jsonl"
    answers.write_text("".join(json.dumps({"text": t}) + "\n" for t in ANSWERS))
    data = str(root / "data")
    with LmdbLog(data) as log:
        version = register_structure(log, evolved())
    [summary] = run(RunRequest(env="crafter", task=None, episodes=1, max_steps=4, seed=0, policy=f"file:{answers}",
                               structure=version, data=data))
    return data, summary.id


def _events(data: str, episode: str) -> list:
    with LmdbLog(data) as log:
        return [r.event for r in log.read_stream(f"ep/{episode}")]


def _ops(events: list) -> list[MemoryOpApplied]:
    return [e for e in events if isinstance(e, MemoryOpApplied)]


@pytest.mark.slow
def test_an_episode_using_the_new_commands_replays(episode: tuple[str, str]) -> None:
    data, ep = episode
    with LmdbLog(data) as log:
        result = replay(log, ep)
    assert result.divergence is None and result.verified == result.steps == 4 and result.ended
    proc = automem("replay", ep, "--data", data, "--json", cwd=Path(data).parent)
    assert proc.returncode == 0 and json.loads(proc.stdout)["verified"] == 4, proc.stderr
    ops = _ops(_events(data, ep))
    kinds = {(o.op.kind, o.phase, o.ok) for o in ops}
    for expected in (("grep", "plan", True), ("head", "plan", True), ("upsert", "log", True),
                     ("rename", "log", True), ("trim", "cap", True), ("write", "derived", True)):
        assert expected in kinds, expected
    refused = [o for o in ops if o.op == MemoryOp("append", "status.txt", ("mine",))]
    assert len(refused) == 1 and not refused[0].ok  # derived files are the engine's
    upserts = [o for o in ops if o.op.kind == "upsert"]
    assert all(o.op.path == "map_notes.txt" for o in upserts)  # the command's fixed file
    assert not any(o.op.kind == "rename" and o.phase == "plan" for o in ops)  # refused by the parser


def test_the_parser_and_prompts_follow_the_structure() -> None:
    s = evolved()
    vocab = vocabulary(s)
    parsed = parse("<|UPSERT_MAP|>3,4|tree<|END|><|RENAME|>a.txt|b.txt<|END|>", vocab, "plan")
    assert [c.tag for c in parsed.commands] == [] and any("RENAME|> is not allowed in the PLAN" in e for e in parsed.errors)
    parsed = parse("<|upsert_map|>3,4|tree<|END|><|grep|>*|x=\\d+<|END|>", vocab, "log")
    assert [(c.kind, c.file, c.fields) for c in parsed.commands] == [
        ("upsert", "map_notes.txt", ("3,4", "tree")), ("grep", "", ("*", "x=\\d+"))]
    log_help, plan_help = command_help(s, "log"), command_help(s, "plan")
    assert "<|UPSERT_MAP|>key|text<|END|>  replace the map line for a coordinate x,y (in map_notes.txt)" in log_help
    assert "<|RENAME|>" in log_help and "<|RENAME|>" not in plan_help and "<|GREP|>file|pattern<|END|>" in plan_help


def test_the_line_cap_is_the_same_everywhere_and_never_lost(episode: tuple[str, str]) -> None:
    data, ep = episode
    events = _events(data, ep)
    steps = [e for e in events if isinstance(e, StepTaken)]
    page = gather(events)
    with LmdbLog(data) as log:
        store = SnapshotStore(log)
        for s in steps:
            memory = memory_after_step(log, store, ep, s.step)
            assert memory.digest() == s.memory_digest  # snapshots + tail: the agent's memory, trims included
            assert len(memory.files["actions_log.txt"].content.splitlines()) <= 3  # the engine's own files are not capped
    final = memory.contents()
    assert final["actions_log.txt"] == "two\nthree\nfour\n"
    rebuilt: dict[str, str] = {}  # the report's per-step edits, folded: the same files
    for name, history in page["files"].items():
        text = ""
        for _, edit in history:
            text = None if edit is None else text[:edit[0]] + edit[2] + text[len(text) - edit[1]:]
        if text is not None:
            rebuilt[name] = text
    assert rebuilt == final
    trace = provenance.build(events, MemoryLimits(max_file_lines=3))
    trims = [o for o in trace.ops if o.event.op.kind == "trim"]
    assert trims and all(o not in trace.writes.get(o.event.op.path, []) for o in trims)
    tail = next(o for o in trace.ops if o.event.op.kind == "tail")  # TAIL 5 of a capped file: the 3 lines left
    assert [trace.ops[w].event.op.args for w in tail.fed_by] == [("one",), ("two",), ("three",)]
    decisions = score(ep, events, agent_limits(evolved()), Params(), "test")
    assert not any(d.kind == "trim" or d.phase in ("cap", "derived") for d in decisions)
    assert not any("lost" in d.components for d in decisions)


def test_derived_files_come_before_the_digest_and_are_never_decisions(episode: tuple[str, str]) -> None:
    data, ep = episode
    events = _events(data, ep)
    for i, e in enumerate(events):
        if isinstance(e, StepTaken) and e.step > 0:
            derived = [d for d in events[:i] if isinstance(d, MemoryOpApplied) and d.phase == "derived"
                       and d.step == e.step]
            before = next(d for d in reversed(events[:i]) if isinstance(d, MemoryOpApplied))
            if derived:
                assert before is derived[-1] and before.memory_digest == e.memory_digest
    status = [e for e in _ops(events) if e.op.path == "status.txt" and e.op.kind in WRITE_KINDS]
    assert status[0].phase == "init" and all(e.phase in ("init", "derived") for e in status if e.ok)
    assert len([e for e in status if e.ok]) >= 2
    last = next(e for e in reversed(events) if isinstance(e, StepTaken))
    content = [e for e in status if e.ok][-1].op.args[0]
    x, y = last.facts.position
    assert f"position: {x},{y}" in content and f"health: {last.facts.health:g}" in content
    assert "food: " in content and "inventory: " in content and "achievements: " in content
    trace = provenance.build(events, evolved().limits)
    read = next(o for o in trace.ops if o.event.op.kind == "read" and o.event.op.path == "status.txt")
    assert read.event.ok and read.fed_by == ()  # a read of engine lines credits no decision
    assert not any(o.event.phase in ("init", "derived") for ops in trace.writes.values() for o in ops)
    decisions = score(ep, events, agent_limits(evolved()), Params(), "test")
    assert decisions and not any(d.phase in ("init", "derived", "cap") for d in decisions)


def test_rename_moves_owners_and_diffs_follow(episode: tuple[str, str]) -> None:
    data, ep = episode
    events = _events(data, ep)
    trace = provenance.build(events, evolved().limits)
    read = next(o for o in trace.ops if o.event.op.kind == "read" and o.event.op.path == "vitals_log.txt")
    assert [trace.ops[w].event.op for w in read.fed_by] == [MemoryOp("append", "vitals_log.txt", ("health fine",))]
    proc = automem("memory", ep, "--diff", "0", "2", "--json", "--data", data, cwd=Path(data).parent)
    assert proc.returncode == 0, proc.stderr
    changes = json.loads(proc.stdout)
    text = json.dumps(changes)
    assert "survival_log.txt" in text and "vitals_log.txt" in text and '"rename"' in text


def test_provenance_of_head_grep_and_rename() -> None:
    writes = [(i, "log", MemoryOp("append", "notes.txt", (line,))) for i, line in
              enumerate(["tree at 1,1", "water at 2,2", "tree at 3,3"])]
    trace = _trace([*writes, (3, "plan", MemoryOp("head", "notes.txt", ("1",))),
                    (3, "plan", MemoryOp("grep", "notes.txt", ("^tree at 3",))),
                    (4, "log", MemoryOp("rename", "notes.txt", ("map.txt",))),
                    (5, "plan", MemoryOp("grep", "*", ("water",)))])
    assert trace.ops[3].fed_by == (0,) and trace.ops[4].fed_by == (2,) and trace.ops[6].fed_by == (1,)
    assert trace.ops[5].added == () and trace.ops[5].removed == ()  # a move: nothing lost, nothing new


@pytest.mark.slow
def test_an_episode_recorded_before_the_new_vocabulary_still_replays(tmp_path: Path) -> None:
    """The fixture was recorded with the code before this change (v0, 32-bit version name)."""
    streams = msgspec.msgpack.decode(FIXTURE.read_bytes())
    data = tmp_path / "data"
    with LmdbLog(str(data)) as log:
        for stream, raw in streams.items():
            log.append(stream, 0, [decode_event(r) for r in raw])
        [old] = stored_structures(log, "crafter")
        assert len(old.rsplit("-", 1)[1]) == 8  # the old short hash, still a name replay finds
        register_structure(log, v0("crafter"))  # today's v0 under its longer name beside it
        episode = next(s for s in streams if s.startswith("ep/"))[3:]
    proc = automem("replay", episode, "--data", str(data), "--json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["divergence"] is None and json.loads(proc.stdout)["verified"] == 12


def test_structure_versions_are_96_bits() -> None:
    version = structure_version(v0("crafter"))
    assert version.startswith("crafter-v0-") and len(version.rsplit("-", 1)[1]) == 24


def test_placeholders_are_exact_tokens_and_every_other_brace_is_literal() -> None:
    assert render("{game} {commands} {actions} {example}", {"game": "{actions}", "commands": "c", "actions": "a",
                                                            "example": "e"}) == "{actions} c a e"
    s = msgspec.structs.replace(v0("crafter"), log_system='JSON like {"x": 1} and {{ }} {game} {unknown', plan_system="{")
    log, plan = system_prompts(s, ["Noop", "Move Left"])
    assert log == 'JSON like {"x": 1} and {{ }} Crafter (a 2D survival game) {unknown' and plan == "{"


# ------------------------------------------------------------------ validation


def _doc(structure: Structure) -> bytes:
    return encode_structure(structure)


def _problems(**changes: object) -> list[str]:
    return validate(msgspec.structs.replace(evolved(), **changes))


def test_the_starting_and_evolved_structures_are_valid() -> None:
    for env in ("crafter", "nethack", "minihack"):
        for small in (False, True):
            assert validate(v0(env, small)) == []
    assert validate(evolved()) == []
    assert check_structure(_doc(evolved())) == evolved()


@pytest.mark.parametrize("document, needle", [
    (b"not json at all", "not JSON"),
    (b"[1, 2, 3]", "not a structure"),
    (b'{"env": "crafter"}', "not a structure"),
    (b"{" * 100_000, "not JSON"),
    (b" " * (5 << 20), "over"),
])
def test_documents_that_are_not_structures(document: bytes, needle: str) -> None:
    with pytest.raises(UserError) as err:
        check_structure(document)
    assert needle in str(err.value) and "\n" not in str(err.value)


def test_hostile_structures_are_refused_with_the_reason() -> None:
    base = evolved()
    reads_only = tuple(c for c in base.commands if c.kind not in ("append", "write", "create", "rename", "upsert"))
    cases = {
        "LOG has no memory write command": dict(commands=reads_only),
        "PLAN has no memory read command": dict(commands=tuple(c for c in base.commands if c.kind in ("action", "done", "append"))),
        "LOG has no DONE": dict(commands=tuple(c for c in base.commands if c.kind != "done")),
        "PLAN has no action": dict(commands=tuple(c for c in base.commands if c.kind != "action")),
        "unknown primitive 'teleport'": dict(commands=base.commands + (Command(tag="TP", kind="teleport"),)),
        "unknown primitive 'trim'": dict(commands=base.commands + (Command(tag="TRIM", kind="trim", params=("file", "n")),)),
        "a tag is 2-20 capital letters": dict(commands=base.commands + (Command(tag="bad tag", kind="read", params=("file",)),)),
        "two commands share a tag": dict(commands=base.commands + (VOCABULARY[0],)),
        "PLAN is read-only": dict(commands=base.commands + (Command(tag="APP", kind="append", params=("file", "line")),)),
        "takes 1..1 params besides the file": dict(commands=base.commands + (Command(tag="ED", kind="append", params=("file",), phases=("log",)),)),
        "exactly one of a `file` param or a fixed file": dict(commands=base.commands + (Command(tag="RD", kind="read"),)),
        "phases must be some of": dict(commands=base.commands + (Command(tag="RD", kind="read", params=("file",), phases=("act",)),)),
        "max_log_turns is 1000": dict(max_log_turns=1000),
        "max_tokens is 1000000": dict(max_tokens=1_000_000),
        "limits.max_file_bytes is": dict(limits=MemoryLimits(max_file_bytes=1 << 40)),
        "limits.max_files is": dict(limits=MemoryLimits(max_files=1 << 30)),
        "limits.name_pattern": dict(limits=MemoryLimits(name_pattern="(a+)+$")),
        "log_system is 3000000 characters": dict(log_system="x" * 3_000_000),
        "unknown placeholders observation": dict(plan_system="{observation} {game}"),
        "initial file '../../etc/passwd'": dict(initial_files={"../../etc/passwd": "x"}),
        "initial file '/abs'": dict(initial_files={"/abs": "x"}),
        "initial file 'a\\x00b'": dict(initial_files={"a\x00b": "x"}),
        "over limits.max_file_bytes": dict(initial_files={"big.txt": "x" * 20_000}),
        "derived file '../status'": dict(derived=(DerivedFile(name="../status", shows=("vitals",)),)),
        "shows must be some of": dict(derived=(DerivedFile(name="s.txt", shows=("passwords",)),)),
        "is also an initial file": dict(derived=(DerivedFile(name="strategy.txt", shows=("vitals",)),)),
        "env 'chess'": dict(env="chess"),
    }
    for needle, changes in cases.items():
        problems = _problems(**changes)
        assert any(needle in p for p in problems), (needle, problems)
        with pytest.raises(UserError) as err:
            check_structure(_doc(msgspec.structs.replace(base, **changes)))
        assert "\n" not in str(err.value) and str(err.value).startswith("invalid structure: ")


def test_a_structure_with_every_memory_command_removed_is_refused() -> None:
    bare = msgspec.structs.replace(evolved(), commands=tuple(c for c in evolved().commands if c.kind in ("done", "action")))
    with pytest.raises(UserError, match="LOG has no memory write command.*PLAN has no memory read command"):
        check_structure(_doc(bare))


def test_derived_content_is_a_pure_function_of_the_facts() -> None:
    from automem.engine.memory.derived import content, derived_ops

    spec = DerivedFile(name="status.txt", shows=("level", "inventory", "position"))
    facts = EnvFacts(position=(3, 4), inventory={"wood": 2, "apple": 1}, depth=2, level=5)
    text = content(spec, facts)
    assert text.splitlines()[1:] == ["depth: 2", "level: 5", "inventory: apple 1, wood 2", "position: 3,4"]
    s = msgspec.structs.replace(evolved(), derived=(spec,))
    [op] = derived_ops(s, facts, EMPTY)
    memory, _ = apply(EMPTY, op)
    assert derived_ops(s, facts, memory) == []  # nothing to rewrite when nothing changed


def test_show_places_engine_ops_and_rederives_their_results(episode: tuple[str, str]) -> None:
    from automem.engine.views.show import show_trace, step_lines

    data, ep = episode
    with LmdbLog(data) as log:
        trace = show_trace(log, ep)
    ops = [o for s in trace.steps for o in s.ops]
    assert all(o.result is not None for o in ops)  # every result, engine ops' too, matches its recorded digest
    step1 = [line.plain for line in step_lines(trace.steps[1])]
    trim = next(i for i, line in enumerate(step1) if "TRIM actions_log.txt" in line)
    assert "APPEND actions_log.txt|three" in step1[trim - 1]  # right under the write it follows
    derived = [(s.step, o) for s in trace.steps for o in s.ops if o.phase == "derived"]
    assert derived and all(any(f"WRITE {o.file}" in line for line in (x.plain for x in step_lines(trace.steps[n])))
                           for n, o in derived)
