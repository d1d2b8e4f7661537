"""Every event automem records, declared once.

Events are frozen msgspec Structs in one tagged union (`type` is the tag). The log
stores each one inside a `Record` envelope that carries the schema version, the stream
and the gapless sequence number that together identify it. Wall-clock time (`ts`) is
informational only: nothing derived from the log may depend on it.
"""

from __future__ import annotations

from typing import Union

import msgspec

from automem.schemas.agent import MEMORY, AgentSpec

SCHEMA_VERSION = 1


class Event(msgspec.Struct, frozen=True, kw_only=True, tag_field="type"):
    """Base of every event; subclasses are tagged by their class name."""


# --------------------------------------------------------------------------- facts


class EnvFacts(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """What was true in the game after a step: ground truth for audits of memory."""

    position: tuple[int, int] | None = None
    health: float | None = None
    inventory: dict[str, int] = {}
    achievements: tuple[str, ...] = ()
    depth: int | None = None
    level: int | None = None
    facing: str | None = None
    nearby: tuple[str, ...] = ()
    view: tuple[str, ...] = ()  # terrain around the player, one row per line, the player at the centre
    extra: dict[str, str] = {}


class MemoryOp(msgspec.Struct, frozen=True, array_like=True):
    """One memory command as the reducer sees it: kind, target file, arguments."""

    kind: str
    path: str = ""
    args: tuple[str, ...] = ()


class OpRef(msgspec.Struct, frozen=True, array_like=True):
    """Where a memory command was issued: the index-th command of one model answer."""

    step: int
    phase: str
    turn: int
    index: int


# ------------------------------------------------------------------------ episode


class EpisodeStarted(Event, frozen=True, kw_only=True):
    episode: str
    env: str
    task: str
    seed: int
    max_steps: int
    structure: str
    models: dict[str, str]
    engine_version: str
    parent: str | None = None
    fork_step: int | None = None
    dropped: tuple[OpRef, ...] = ()  # commands a counterfactual fork does not apply
    request_id: str | None = None
    temperature: float = 0.0  # sampling of every model call (0: greedy); each call's seed follows from `seed`
    top_p: float = 1.0
    agent: AgentSpec = MEMORY  # which agent played (memory, or a baseline) and its observation text


class LLMCalled(Event, frozen=True, kw_only=True):
    step: int
    phase: str
    turn: int
    role: str
    model: str
    prompt_digest: str
    response: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    latency_ms: float = 0.0
    error: str | None = None


class MemoryOpApplied(Event, frozen=True, kw_only=True):
    step: int
    phase: str
    turn: int
    op: MemoryOp
    ok: bool
    result_digest: str
    read_versions: dict[str, str] = {}
    written_versions: dict[str, str] = {}
    memory_digest: str = ""
    index: int | None = None  # the command's place in its answer (a fork's dropped ones counted); None: seeded files


class StepTaken(Event, frozen=True, kw_only=True):
    step: int
    raw_action: str
    action: str
    valid: bool
    reward: float
    done: bool
    observation: str
    observation_digest: str
    memory_digest: str
    facts: EnvFacts = EnvFacts()


class OutcomeObserved(Event, frozen=True, kw_only=True):
    step: int
    kind: str  # achievement | level | damage | death | resource_lost | ...
    detail: str
    value: float = 0.0


class EpisodeEnded(Event, frozen=True, kw_only=True):
    return_: float = msgspec.field(name="return")
    progression: float
    length: int
    cause: str  # done | max_steps | model_error | stalled | ...
    memory_ops: int = 0


class EpisodeAbandoned(Event, frozen=True, kw_only=True):
    reason: str
    worker: str = ""


# ---------------------------------------------------------------------- structure


class StructureProposed(Event, frozen=True, kw_only=True):
    env: str
    version: str
    parent: str | None
    document: bytes
    rationale: str = ""
    reviewer: str = ""  # the model that proposed it ("" : the engine's own starting structures)


class StructureEvaluated(Event, frozen=True, kw_only=True):
    version: str
    seeds: tuple[int, ...]
    episodes: tuple[str, ...]
    mean_progression: float
    purpose: str = ""  # "select" (decides acceptance) or "report" (held out, reported only)
    progression: tuple[float, ...] = ()  # per seed
    figures: dict[str, float] = {}  # memory proficiency, as loop 2's eval measures it


class StructureAccepted(Event, frozen=True, kw_only=True):
    version: str
    mean_progression: float
    baseline_progression: float
    parent: str = ""
    model_class: str = ""  # "small" (the embedded model's lineage) or "full": what `--structure auto` picks from


class StructureRejected(Event, frozen=True, kw_only=True):
    version: str
    reason: str


# ------------------------------------------------------------------------ loop 2


class DecisionScored(Event, frozen=True, kw_only=True):
    """The credit of one memory decision: a whole answer of the memory role (index None) or
    one memory command in it (its index in the answer). Scores of one scorer version are
    one set; `components` say why (outcome, read credit, penalties)."""

    episode: str
    step: int
    phase: str
    turn: int
    score: float
    components: dict[str, float] = {}
    rule: str = ""  # the method: "rules" for the rule scorer, "judge:SPEC" for a model's second opinion
    index: int | None = None
    kind: str = ""  # the command's kind (read, append, ...), "answer" for a whole answer
    scorer: str = ""  # the scorer version: a hash of its rules and parameters


class DatasetBuilt(Event, frozen=True, kw_only=True):
    dataset: str
    examples: int
    sha256: str
    path: str
    episodes: tuple[str, ...] = ()
    scorer: str = ""
    manifest: str = ""  # path of the manifest (selection, counts, rejections), beside the examples
    params: dict[str, str] = {}


class ModelVersionCreated(Event, frozen=True, kw_only=True):
    """A trained memory specialist: a LoRA adapter over `base`, content-addressed."""

    name: str  # one name per version, derived from the adapter's weights
    base: str  # the base model as a policy spec names it (local, local:PATH, ...)
    adapter: str  # the adapter folder, relative to the store's data folder
    sha256: str  # of the adapter's safetensors file
    dataset: str
    params: dict[str, str] = {}  # the training config used, flattened
    base_identity: str = ""  # a digest of the base model's config and weights
    loss: float = 0.0  # the final training loss
    tokens: int = 0  # tokens that carried loss, over all steps
    steps: int = 0
    device: str = ""
    distill: bool = False  # trained on answers of another model than the base, on purpose
    files_sha256: str = ""  # of the weights and adapter_config.json together ("": a version made before 0.9.0)


class ModelVersionEvaluated(Event, frozen=True, kw_only=True):
    """A version against its baseline (the promoted version, or the base model alone) on the same seeds."""

    name: str
    seeds: tuple[int, ...]
    mean_progression: float
    env: str = ""
    task: str = ""
    max_steps: int = 0
    episodes: tuple[str, ...] = ()  # the candidate's, one per seed
    baseline: str = ""  # the version it was compared with ("" : the base model alone)
    baseline_episodes: tuple[str, ...] = ()
    progression: tuple[float, ...] = ()  # per seed, the candidate's
    baseline_progression: tuple[float, ...] = ()
    figures: dict[str, float] = {}  # memory proficiency: the candidate's
    baseline_figures: dict[str, float] = {}


class ModelVersionPromoted(Event, frozen=True, kw_only=True):
    name: str
    role: str
    env: str = ""
    metric: str = ""
    delta: float = 0.0  # mean paired difference, candidate minus incumbent
    interval: tuple[float, float] = (0.0, 0.0)  # bootstrap interval of that difference
    replaces: str = ""  # the version promoted before ("": none)


# -------------------------------------------------------------------- scale-out


class RolloutRequested(Event, frozen=True, kw_only=True):
    request_id: str
    env: str
    task: str
    seed: int
    max_steps: int
    policy: str
    memory_policy: str | None = None
    structure: str | None = None
    temperature: float = 0.0
    top_p: float = 1.0
    agent: AgentSpec = MEMORY


class RolloutAttempted(Event, frozen=True, kw_only=True):
    """A worker took the request and runs this episode for it."""

    request_id: str
    episode: str
    worker: str


class RolloutCompleted(Event, frozen=True, kw_only=True):
    """The one completed episode of a request (the first one recorded wins)."""

    request_id: str
    episode: str


class RolloutFailed(Event, frozen=True, kw_only=True):
    """A worker could not play the request (bad request, a model version it cannot load): it
    is not redelivered, and whoever waits on it learns why instead of waiting out its time."""

    request_id: str
    reason: str
    worker: str = ""


class DeadLettered(Event, frozen=True, kw_only=True):
    """A record that could not be decoded, kept so nothing is silently lost."""

    source: str
    position: str
    error: str
    raw: bytes = b""


# -------------------------------------------------------------------------- loop


class LoopStarted(Event, frozen=True, kw_only=True):
    """The first event of `loop/<id>`: the settings every later start is compared with."""

    loop: str
    settings: dict[str, str]


class LoopIterationStarted(Event, frozen=True, kw_only=True):
    iteration: int  # from 1
    structure: str  # in force at its start
    model: str = ""  # the promoted memory version at its start ("": the base model alone)


class LoopStageStarted(Event, frozen=True, kw_only=True):
    """A stage begun: `marks` are stream heads it may find its own earlier writes after, on resume."""

    iteration: int
    stage: str
    marks: dict[str, int] = {}


class LoopStageDone(Event, frozen=True, kw_only=True):
    """What a stage produced: ids and versions in `outputs`, measurements in `figures`."""

    iteration: int
    stage: str
    episodes: tuple[str, ...] = ()
    outputs: dict[str, str] = {}
    figures: dict[str, float] = {}


class LoopStageFailed(Event, frozen=True, kw_only=True):
    iteration: int
    stage: str
    reason: str
    # The exception's type when the stage crashed on something no check foresaw (a hostile
    # answer, a bug); "" when the world refused (bad input, a model server or a disk down),
    # which a later run may find mended.
    crash: str = ""


class LoopIterationFinished(Event, frozen=True, kw_only=True):
    iteration: int
    structure: str  # in force at its end
    model: str = ""
    accepted: bool = False  # loop 1 accepted a new structure in it
    promoted: bool = False  # loop 2 promoted a new model version in it


# ------------------------------------------------------------------------ probes

class ProbeAsked(Event, frozen=True, kw_only=True):
    """A question about an episode's past, asked off its trajectory (stream probe/<episode>).

    `run` names the probe run (its settings' digest); `step` is when it is asked (memory and
    observation as after that step), `about` the earlier step whose recorded facts hold
    `key`, the answer. `arm` is "memory" (memory as it was) or "control" (empty memory).
    """

    run: str
    probe: int
    arm: str
    step: int
    about: int
    kind: str
    question: str
    key: str
    reader: str
    memory_digest: str
    turns: int = 3  # the reader's turn budget (its last turn is primed with the answer tag)


class ProbeAnswered(Event, frozen=True, kw_only=True):
    """The reader's answer and its verdict; `error` when the reader failed (a failed probe)."""

    run: str
    probe: int
    arm: str
    answer: str
    correct: bool
    error: str | None = None


AnyEvent = Union[
    EpisodeStarted,
    LLMCalled,
    MemoryOpApplied,
    StepTaken,
    OutcomeObserved,
    EpisodeEnded,
    EpisodeAbandoned,
    StructureProposed,
    StructureEvaluated,
    StructureAccepted,
    StructureRejected,
    DecisionScored,
    DatasetBuilt,
    ModelVersionCreated,
    ModelVersionEvaluated,
    ModelVersionPromoted,
    RolloutRequested,
    RolloutAttempted,
    RolloutCompleted,
    RolloutFailed,
    DeadLettered,
    LoopStarted,
    LoopIterationStarted,
    LoopStageStarted,
    LoopStageDone,
    LoopStageFailed,
    LoopIterationFinished,
    ProbeAsked,
    ProbeAnswered,
]

EVENT_TYPES: tuple[type[Event], ...] = AnyEvent.__args__  # type: ignore[attr-defined]


class Record(msgspec.Struct, frozen=True, array_like=True):
    """The envelope stored in the log: schema version first so old code can refuse."""

    v: int
    stream: str
    seq: int
    ts: float
    event: AnyEvent


class Batch(msgspec.Struct, frozen=True, array_like=True):
    """One append as a single message (Kafka): a whole batch lands or none of it does."""

    v: int
    stream: str
    seq: int  # seq of the first event
    ts: float
    events: list[AnyEvent]


class Recorded(msgspec.Struct, frozen=True):
    """A record as read back, with its global position in the log."""

    offset: int
    stream: str
    seq: int
    ts: float
    event: AnyEvent
