"""LocalPolicy sessions and batched decoding: per-episode prefix caches over shared weights,
and complete_batch answering like `complete` (greedy and seeded sampling), failing per item."""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest

from automem.engine.policy.base import (
    Completion,
    ModelError,
    PolicyRequest,
    complete_all,
)
from automem.engine.policy.local import LocalPolicy

LOG_SYSTEM = (
    "You are the memory keeper of an agent playing Crafter (a 2D survival game). Memory files:"
    " actions_log.txt, map_notes.txt, strategy.txt, survival_log.txt. Record what the last action"
    " taught. Commands: <|APPEND|>file|line<|END|> adds a line, <|DONE|> ends the turn."
)
PLAN_SYSTEM = (
    "You are an agent playing Crafter (a 2D survival game). Choose the next action. Reply with"
    " <|ACTION|>name<|END|>. Valid actions: Noop, Move West, Move East, Move North, Move South, Do,"
    " Sleep, Place Table, Make Wood Pickaxe."
)
OBSERVATION = (
    "Step {step}. Observation:\nHealth {health}/9, Food 8/9, Drink 7/9, Energy 9/9.\nYou face {face}.\n"
    "Inventory: {inventory}.\nAround you (9x7 view; every other square is grass):\n- tree: 2 north, 1 west\n"
    "- water: 3 south\nRecent steps:\nstep {prev}: {action} -> reward 0\n"
)


def log_request(step: int, face: str = "tree (north)", inventory: str = "wood 1", max_tokens: int = 16,
                stop: tuple[str, ...] = (), **sampling: float) -> PolicyRequest:
    """A LOG call as the agent sends it: a prefix the model continues, stop strings (SmolLM2-135M
    never writes the agent's, so a test adds one it does write)."""
    user = OBSERVATION.format(step=step, health=9, face=face, inventory=inventory, prev=step - 1, action="Do")
    messages = ({"role": "system", "content": LOG_SYSTEM},
                {"role": "user", "content": user + "Record the outcome of the last action."},
                {"role": "assistant", "content": "<|APPEND|>actions_log.txt|"})
    return PolicyRequest(messages=messages, max_tokens=max_tokens, stop=("<|DONE|>", "<|END|>", *stop), phase="log",
                         **sampling)  # type: ignore[arg-type]


def plan_request(step: int, health: int = 9, extra: str = "", max_tokens: int = 12) -> PolicyRequest:
    user = OBSERVATION.format(step=step, health=health, face="grass (south)", inventory="nothing", prev=step - 1,
                              action="Move West") + extra + "Look things up or commit an action."
    messages = ({"role": "system", "content": PLAN_SYSTEM}, {"role": "user", "content": user},
                {"role": "assistant", "content": "<|ACTION|>"})
    return PolicyRequest(messages=messages, max_tokens=max_tokens, stop=("<|END|>",), phase="plan")


REQUESTS = [
    log_request(3, stop=(".\n",)),
    plan_request(7, health=5, extra="A zombie is 2 east of you and hits you for 2 damage at night.\n" * 4),
    log_request(12, face="water (south)", inventory="wood 4, sapling 1, wood pickaxe", max_tokens=20),
    plan_request(2),
]


def fresh(policy: LocalPolicy, request: PolicyRequest) -> Completion:
    return policy.for_episode(0).complete(request)


def same_answer(a: Completion | ModelError, b: Completion) -> bool:
    assert isinstance(a, Completion), a
    return (a.text, a.stop_hit, a.prompt_tokens, a.completion_tokens) == (
        b.text, b.stop_hit, b.prompt_tokens, b.completion_tokens)


@pytest.mark.slow
def test_sessions_have_their_own_prefix_cache_over_shared_weights(local_policy: LocalPolicy) -> None:
    a, b = local_policy.for_episode(1), local_policy.for_episode(2)
    assert a._model is b._model is local_policy._model and a._lock is b._lock
    assert a.batch_key == b.batch_key == local_policy.batch_key
    first = a.complete(REQUESTS[0])
    held = list(a._cached_ids)
    assert a.cached_tokens >= first.prompt_tokens and b.cached_tokens == 0
    b.complete(REQUESTS[1])  # another episode's call does not crop or replace a's cache
    assert a._cached_ids == held and a._cache is not b._cache
    assert a.complete(REQUESTS[0]).text == first.text == fresh(local_policy, REQUESTS[0]).text


@pytest.mark.slow
def test_batch_answers_like_unbatched_and_fails_per_item(local_policy: LocalPolicy) -> None:
    too_long = plan_request(1, extra="tree stone water " * 3000)
    calls = [(local_policy.for_episode(i), r) for i, r in enumerate([REQUESTS[0], too_long, *REQUESTS[1:]])]
    answers = local_policy.complete_batch(calls)
    assert len(answers) == 5
    assert isinstance(answers[1], ModelError) and "exceeds the model's context" in str(answers[1])
    batched = [answers[0], *answers[2:]]
    alone = [fresh(local_policy, r) for r in REQUESTS]
    # measured equal on this model at these lengths (bench/local_batch.py measures it on agent requests)
    assert all(same_answer(a, b) for a, b in zip(batched, alone))
    assert len({a.completion_tokens for a in alone}) > 1  # rows leave the batch at different steps
    assert any(a.stop_hit for a in alone) and all(a.latency_ms > 0 for a in batched)  # type: ignore[union-attr]
    for (session, request), answer in zip(calls, answers):
        if isinstance(answer, Completion):  # each session keeps its prompt cached for its next call
            assert session.cached_tokens == answer.prompt_tokens


@pytest.mark.slow
def test_next_calls_reuse_the_prefix_and_still_answer_unbatched(
        local_policy: LocalPolicy, uncached_policy: LocalPolicy) -> None:
    sessions = [local_policy.for_episode(i) for i in range(3)]
    firsts = local_policy.complete_batch(list(zip(sessions, REQUESTS[:3])))
    reused: list[int] = []
    for session in sessions:  # spy on how much of each next prompt the session skips
        session._reuse_prefix = spy(session, reused)  # type: ignore[method-assign]
    nexts = [follow_up(r, a) for r, a in zip(REQUESTS[:3], firsts)]
    again = local_policy.complete_batch(list(zip(sessions[:2], nexts[:2])))  # batched again
    last = sessions[2].complete(nexts[2])  # and one alone
    assert len(reused) == 3 and all(n > 100 for n in reused)
    expected = [uncached_policy.complete(r) for r in nexts]
    assert all(same_answer(a, b) for a, b in zip([*again, last], expected))


def spy(session: LocalPolicy, into: list[int]):  # type: ignore[no-untyped-def]
    def reuse_prefix(prompt: list[int]) -> int:
        into.append(LocalPolicy._reuse_prefix(session, prompt))
        return into[-1]
    return reuse_prefix


def follow_up(request: PolicyRequest, answer: Completion | ModelError) -> PolicyRequest:
    """The agent's next turn: the answer kept, the result of its commands as a user turn."""
    assert isinstance(answer, Completion)
    done = ({**request.messages[-1], "content": request.messages[-1]["content"] + answer.text + "<|END|>"},
            {"role": "user", "content": "[APPEND actions_log.txt] ok (3 lines). Continue or <|DONE|>."},
            {"role": "assistant", "content": "<|APPEND|>"})
    return msgspec.structs.replace(request, messages=request.messages[:-1] + done)


@pytest.mark.slow
def test_sampled_rows_draw_with_their_own_seed(local_policy: LocalPolicy) -> None:
    sampled = log_request(5, max_tokens=10, temperature=0.9, top_p=0.95, seed=11)
    other = msgspec.structs.replace(sampled, seed=12)
    mixed = local_policy.complete_batch([(local_policy.for_episode(i), r)
                                         for i, r in enumerate([sampled, REQUESTS[1], other, sampled])])
    twins = local_policy.complete_batch([(local_policy.for_episode(i), r) for i, r in enumerate([sampled, sampled])])
    alone = fresh(local_policy, sampled)
    texts = [a.text for a in (mixed[0], mixed[3], *twins)]  # type: ignore[union-attr]
    assert texts == [alone.text] * 4  # same seed: same draw, whatever else is in the batch
    assert same_answer(mixed[2], fresh(local_policy, other)) and mixed[2].text != alone.text  # type: ignore[union-attr]
    assert same_answer(mixed[1], fresh(local_policy, REQUESTS[1]))


@pytest.mark.slow
def test_a_failing_call_fails_its_item_and_resets_its_cache(local_policy: LocalPolicy) -> None:
    good, bad = local_policy.for_episode(0), local_policy.for_episode(1)
    bad.complete(REQUESTS[3])
    assert bad.cached_tokens > 0

    def broken(request: PolicyRequest) -> list[int]:
        raise RuntimeError("tokenizer blew up")

    bad._encode = broken  # type: ignore[method-assign]
    answers = local_policy.complete_batch([(bad, REQUESTS[0]), (good, REQUESTS[3])])
    assert isinstance(answers[0], ModelError) and "RuntimeError: tokenizer blew up" in str(answers[0])
    assert bad.cached_tokens == 0 and bad._cache is None
    assert same_answer(answers[1], fresh(local_policy, REQUESTS[3]))
    [single] = local_policy.complete_batch([(good, REQUESTS[3])])  # a batch of one is `complete`
    assert same_answer(single, answers[1])  # type: ignore[arg-type]

    def no_decode(rows: list) -> None:
        raise RuntimeError("out of memory")

    dispatcher, short = local_policy.for_episode(2), local_policy.for_episode(3)
    dispatcher._decode_rows = no_decode  # type: ignore[method-assign]
    one_token = msgspec.structs.replace(REQUESTS[3], max_tokens=1)
    answers = dispatcher.complete_batch([(good, REQUESTS[3]), (short, one_token)])
    assert isinstance(answers[0], ModelError) and "out of memory" in str(answers[0]) and good.cached_tokens == 0
    assert same_answer(answers[1], fresh(local_policy, one_token))  # done at prefill: it stands
    assert short.cached_tokens == answers[1].prompt_tokens  # type: ignore[union-attr]


@pytest.mark.slow
def test_adapter_on_and_off_sessions_batch_apart(converted_model: Path, random_adapter: Path,
                                                 local_policy: LocalPolicy) -> None:
    tuned = LocalPolicy(converted_model, "tuned", random_adapter, keep_adapter=True)
    base = tuned.without_adapter("base")
    on, off = tuned.for_episode(0), base.for_episode(0)
    assert off._adapter_off and off.name == "base" and off._model is on._model
    assert on.batch_key == tuned.for_episode(1).batch_key != off.batch_key == base.for_episode(1).batch_key
    assert local_policy.batch_key not in (on.batch_key, off.batch_key)
    request = msgspec.structs.replace(REQUESTS[3], max_tokens=6)
    calls = [(on, request), (off, request), (tuned.for_episode(2), request), (base.for_episode(2), request)]
    answers = complete_all(calls)  # two batches: adapter on, adapter off
    assert [a.model for a in answers] == ["tuned", "base", "tuned", "base"]  # type: ignore[union-attr]
    on_text, off_text = tuned.for_episode(3).complete(request).text, base.for_episode(3).complete(request).text
    assert on_text != off_text == local_policy.for_episode(0).complete(request).text
    assert [a.text for a in answers] == [on_text, off_text, on_text, off_text]  # type: ignore[union-attr]
    # a mixed batch sent to one backend still answers each call with its own state
    assert [a.text for a in tuned.complete_batch(calls[:2])] == [on_text, off_text]  # type: ignore[union-attr]


@pytest.mark.slow
def test_a_session_keeps_its_log_and_plan_prompts_cached_apart(local_policy: LocalPolicy) -> None:
    """The agent alternates LOG and PLAN, each with its own system prompt: neither crops the
    other's cache, so a step's PLAN reuses the previous step's PLAN prefix (and LOG likewise)."""
    session = local_policy.for_episode(0)
    reused: list[int] = []
    session._reuse_prefix = spy(session, reused)  # type: ignore[method-assign]
    for step in (1, 2, 3):
        session.complete(log_request(step, max_tokens=2))
        session.complete(plan_request(step, max_tokens=2))
    shared_log, shared_plan = reused[2], reused[3]  # step 2's LOG and PLAN
    assert reused[:2] == [0, 0] and shared_log > 60 and shared_plan > 60, reused
    assert reused[4:] == [shared_log, shared_plan]
    assert session.complete(plan_request(3, max_tokens=2)).text == fresh(local_policy, plan_request(3, max_tokens=2)).text
