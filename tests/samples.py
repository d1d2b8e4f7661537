"""One instance of every event type, for round trips and for writing sample logs."""

from __future__ import annotations

from automem.schemas.events import (
    LoopIterationFinished, LoopIterationStarted, LoopStageDone, LoopStageFailed, LoopStageStarted, LoopStarted,
    DatasetBuilt, DeadLettered, DecisionScored, EnvFacts, EpisodeAbandoned, EpisodeEnded,
    EpisodeStarted, LLMCalled, MemoryOp, MemoryOpApplied, ModelVersionCreated,
    ModelVersionEvaluated, ModelVersionPromoted, OutcomeObserved, RolloutAttempted, RolloutCompleted,
    RolloutFailed, RolloutRequested, StepTaken,
    StructureAccepted, StructureEvaluated, StructureProposed, StructureRejected,
)

SAMPLES = [
    EpisodeStarted(episode="e1", env="crafter", task="default", seed=3, max_steps=30, structure="v0",
                   models={"agent": "smollm2"}, engine_version="0.1.0"),
    LLMCalled(step=0, phase="plan", turn=1, role="agent", model="smollm2", prompt_digest="ab", response="<|ACTION|>Do<|END|>"),
    MemoryOpApplied(step=0, phase="log", turn=0, op=MemoryOp("append", "notes.txt", ("x",)), ok=True,
                    result_digest="cd", read_versions={"notes.txt": "01"}, written_versions={"notes.txt": "02"}),
    StepTaken(step=0, raw_action="do", action="Do", valid=True, reward=1.0, done=False, observation="You see a tree.",
              observation_digest="ef", memory_digest="12",
              facts=EnvFacts(position=(3, 4), health=9.0, inventory={"wood": 1}, achievements=("collect_wood",))),
    OutcomeObserved(step=0, kind="achievement", detail="collect_wood", value=1.0),
    EpisodeEnded(return_=1.0, progression=1 / 22, length=1, cause="max_steps", memory_ops=1),
    EpisodeAbandoned(reason="worker killed", worker="w1"),
    StructureProposed(env="crafter", version="v1", parent="v0", document=b"{}", rationale="cap files"),
    StructureEvaluated(version="v1", seeds=(1, 2), episodes=("e1", "e2"), mean_progression=0.2),
    StructureAccepted(version="v1", mean_progression=0.2, baseline_progression=0.1),
    StructureRejected(version="v2", reason="no gain"),
    DecisionScored(episode="e1", step=0, phase="log", turn=0, score=0.5, components={"outcome": 1.0}, rule="r"),
    DatasetBuilt(dataset="d1", examples=300, sha256="aa", path="/tmp/d1.jsonl", episodes=("e1",)),
    ModelVersionCreated(name="m1", base="smollm2", adapter="/tmp/a", sha256="bb", dataset="d1", params={"r": "8"}),
    ModelVersionEvaluated(name="m1", seeds=(1,), mean_progression=0.3),
    ModelVersionPromoted(name="m1", role="memory"),
    RolloutRequested(request_id="r1", env="crafter", task="default", seed=1, max_steps=10, policy="random"),
    RolloutAttempted(request_id="r1", episode="r1-a0", worker="w1"),
    RolloutCompleted(request_id="r1", episode="r1-a0"),
    RolloutFailed(request_id="r2", reason="unknown model version mem-x", worker="w1"),
    DeadLettered(source="ep", position="0:12", error="bad", raw=b"\x00"),
    LoopStarted(loop="crafter-0123456789ab", settings={"env": "crafter", "train_seeds": "1000,1001"}),
    LoopIterationStarted(iteration=1, structure="v0-small", model=""),
    LoopStageStarted(iteration=1, stage="loop1", marks={"structure": 3, "promotions": 0}),
    LoopStageDone(iteration=1, stage="rollouts", episodes=("e1",), outputs={"structure": "v0-small"},
                  figures={"mean_progression": 0.1}),
    LoopStageFailed(iteration=1, stage="train", reason="out of memory"),
    LoopIterationFinished(iteration=1, structure="v1", model="mem-1", accepted=True, promoted=True),
]
