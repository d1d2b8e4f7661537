"""deploy/: the compose file, its env file and the Dockerfile, checked as far as a parser can.

No Docker engine runs here, so these tests read the files: YAML structure, the Kafka KRaft
settings against each other, the automem commands against the CLI, every ${VAR} against
.env.example, the Dockerfile against pyproject.toml. `docker compose config` runs too where
a compose CLI is installed (it needs no engine), and is skipped elsewhere.
"""

from __future__ import annotations

import base64
import re
import shutil
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import pytest

yaml = pytest.importorskip("yaml")

from automem.schemas.streams import FAMILIES  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
COMPOSE_FILE = DEPLOY / "compose.yaml"
ENV_FILE = DEPLOY / ".env.example"

BUS = "kafka://kafka:9092"
CONSUMERS = {"materializer", "scorer", "dataset", "trainer", "reviewer", "publisher"}
SUBCOMMANDS = {"consume", "worker", "submit", "train", "episodes", "loop"}
GPU_SERVICES = {"vllm", "trainer"}
VLLM_LORA_RANKS = {1, 8, 16, 32, 64, 128, 256, 320, 512}  # vllm/config/lora.py MaxLoRARanks

VAR = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?+])([^}]*))?\}")


# ------------------------------------------------------------------------ helpers ---

def load_env() -> dict[str, str]:
    env: dict[str, str] = {}
    for number, line in enumerate(ENV_FILE.read_text().splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        assert "=" in line, f".env.example line {number} is not KEY=VALUE: {line!r}"
        key, value = line.split("=", 1)
        assert re.fullmatch(r"[A-Z_][A-Z0-9_]*", key), f".env.example line {number}: bad key {key!r}"
        assert key not in env, f".env.example sets {key} twice"
        env[key] = value
    return env


def interpolate(text: str, env: dict[str, str]) -> str:
    """Compose's ${VAR}, ${VAR:-default}, ${VAR-default}, ${VAR:?error} and $$."""

    def sub(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name, op, arg = match.groups()
        value = env.get(name)
        if op == ":-":
            return value if value else arg
        if op == "-":
            return value if value is not None else arg
        if op in (":?", "?"):
            assert value, f"${{{name}}} is required: {arg}"
            return value
        assert op is None, f"unsupported interpolation {match.group(0)}"
        assert value is not None, f"${{{name}}} is not set in .env.example and has no default"
        return value

    return VAR.sub(sub, text)


def resolve(node: Any, env: dict[str, str]) -> Any:
    if isinstance(node, dict):
        return {key: resolve(value, env) for key, value in node.items()}
    if isinstance(node, list):
        return [resolve(value, env) for value in node]
    if isinstance(node, str):
        return interpolate(node, env)
    return node


@pytest.fixture(scope="module")
def env() -> dict[str, str]:
    return load_env()


@pytest.fixture(scope="module")
def raw() -> dict[str, Any]:
    doc = yaml.safe_load(COMPOSE_FILE.read_text())
    assert isinstance(doc, dict)
    return doc


@pytest.fixture(scope="module")
def compose(raw: dict[str, Any], env: dict[str, str]) -> dict[str, Any]:
    """The compose file as `docker compose --env-file .env.example config` would see it."""
    return resolve(raw, env)


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return compose["services"]


def automem_services(services: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {
        name: spec for name, spec in services.items()
        if spec.get("image", "").split(":")[0] in ("automem", "automem-gpu")
    }


def option(command: list[str], flag: str) -> str | None:
    if flag not in command:
        return None
    index = command.index(flag)
    assert index + 1 < len(command), f"{flag} has no value in {command}"
    return command[index + 1]


def listeners(value: str) -> dict[str, tuple[str, int]]:
    """'NAME://host:port,...' -> {NAME: (host, port)}."""
    found = {}
    for item in value.split(","):
        name, address = item.strip().split("://", 1)
        host, port = address.rsplit(":", 1)
        found[name] = (host, int(port))
    return found


def volume_targets(spec: dict[str, Any]) -> dict[str, str | None]:
    """Container path -> named volume (None for an anonymous volume)."""
    targets: dict[str, str | None] = {}
    for entry in spec.get("volumes", []):
        assert isinstance(entry, str), f"use the short volume syntax: {entry!r}"
        parts = entry.split(":")
        if len(parts) == 1:
            targets[parts[0]] = None
        else:
            targets[parts[1]] = parts[0]
    return targets


def gpu_devices(spec: dict[str, Any]) -> list[dict[str, Any]]:
    devices = spec.get("deploy", {}).get("resources", {}).get("reservations", {}).get("devices", [])
    return [d for d in devices if "gpu" in d.get("capabilities", [])]


def kafka_log_default_prefix() -> str:
    """The topic prefix automem uses when the bus URL names none."""
    import inspect

    from automem.engine.log import open_log
    from automem.engine.log.kafka import KafkaLog

    default = inspect.signature(KafkaLog.__init__).parameters["prefix"].default
    assert f'prefix or "{default}"' in inspect.getsource(open_log), "open_log and KafkaLog disagree on the prefix"
    return default


def package_roots() -> tuple[str, ...]:
    """The top-level folders setup.py maps into the automem namespace (its ROOTS)."""
    import ast

    tree = ast.parse((ROOT / "setup.py").read_text())
    found = [n.value for n in ast.walk(tree) if isinstance(n, ast.Assign)
             and any(isinstance(t, ast.Name) and t.id == "ROOTS" for t in n.targets)]
    assert len(found) == 1, "setup.py names its package folders in one ROOTS tuple"
    return ast.literal_eval(found[0])


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with comments dropped and continuation lines joined."""
    instructions: list[tuple[str, str]] = []
    pending = ""
    for line in (DEPLOY / "Dockerfile").read_text().splitlines():
        stripped = line.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        full = (pending + stripped).strip()
        pending = ""
        keyword, _, rest = full.partition(" ")
        instructions.append((keyword.upper(), rest.strip()))
    assert not pending, "Dockerfile ends inside a continued line"
    return instructions


# -------------------------------------------------------------------------- tests ---

def test_services_present(services: dict[str, dict[str, Any]]) -> None:
    for name in ("kafka", "kafka-init", "vllm", "materializer", "scorer", "dataset", "worker", "trainer"):
        assert name in services, f"compose.yaml has no service {name!r}"
    assert services["trainer"].get("profiles") == ["train"], "the GPU trainer is opt-in: it sits behind profile train"
    for name in ("kafka", "vllm", "materializer", "worker"):
        assert "profiles" not in services[name], f"{name} must start with a plain `docker compose up`"


def cli_parse(argv: list[str]) -> str | None:
    """Parse `automem ARGS` with the CLI's own parser without running it: the problem, or
    None when the command exists and its options parse (a consumer must exist too)."""
    import typer.main

    try:
        from typer._click import ClickException  # typer 0.2x carries its own click
    except ImportError:
        from click import ClickException

    from automem.consumers import NAMES
    from automem.engine.cli.app import app

    group = typer.main.get_command(app)
    assert argv[0] == "automem"
    command = group.commands.get(argv[1])  # type: ignore[attr-defined]
    if command is None:
        return f"no command `automem {argv[1]}`"
    name, rest = argv[1], list(argv[2:])
    while hasattr(command, "commands") and rest and not rest[0].startswith("-"):
        # a group (`automem loop run ...`): its parser alone would not check the subcommand's options
        sub = command.commands.get(rest[0])
        if sub is None:
            return f"no command `automem {name} {rest[0]}`"
        command, name, rest = sub, f"{name} {rest[0]}", rest[1:]
    try:
        command.make_context(name, rest)
    except ClickException as exc:
        return f"`automem {name}` refuses its options: {exc.format_message()}"
    if argv[1] == "consume" and argv[2] not in NAMES:
        return f"no consumer `automem consume {argv[2]}`"
    return None


def test_every_service_runs_a_command_the_cli_has(services: dict[str, dict[str, Any]]) -> None:
    """Services start only commands that exist; slots for later ones sit in profile `pending`,
    and leave it as soon as their command exists."""
    for name, spec in automem_services(services).items():
        problem = cli_parse(spec["command"])
        if "pending" in spec.get("profiles", []):
            assert spec["profiles"] == ["pending"], f"{name}: another profile would start a pending service"
            assert problem is not None and problem.startswith("no "), \
                f"{name}: its command exists now ({problem or 'it parses'}): move it out of profile pending"
        else:
            assert problem is None, f"{name}: {problem}"


def test_every_automem_command_is_a_known_cli_call(services: dict[str, dict[str, Any]]) -> None:
    ours = automem_services(services)
    assert {"materializer", "scorer", "dataset", "worker", "trainer"} <= set(ours)
    for name, spec in ours.items():
        command = spec.get("command")
        assert isinstance(command, list) and all(isinstance(part, str) for part in command), \
            f"{name}: command must be an exec-form list of strings (no shell)"
        assert command[0] == "automem", f"{name}: command must start with the automem console script"
        assert command[1] in SUBCOMMANDS, f"{name}: unknown automem command {command[1]!r}"
        if command[1] == "consume":
            assert command[2] in CONSUMERS, f"{name}: unknown consumer {command[2]!r}"
        assert option(command, "--bus") == BUS, f"{name}: must pass --bus {BUS}"
        data = option(command, "--data")
        assert data is not None, f"{name}: must pass --data"
        assert data in volume_targets(spec), f"{name}: --data {data} is not a volume"
        assert spec.get("init") is True, f"{name}: needs init: true so SIGTERM reaches automem"


def test_consumers_are_the_named_services(services: dict[str, dict[str, Any]]) -> None:
    for name in ("materializer", "scorer", "dataset", "trainer"):
        assert services[name]["command"][1:3] == ["consume", name]
    assert services["worker"]["command"][1] == "worker"


def test_state_stores_are_not_shared(services: dict[str, dict[str, Any]], compose: dict[str, Any]) -> None:
    declared = set(compose.get("volumes") or {})
    owners: dict[str, str] = {}
    for name, spec in services.items():
        for target, volume in volume_targets(spec).items():
            if volume is None or volume.startswith((".", "/")):
                continue
            assert volume in declared, f"{name} mounts undeclared volume {volume!r}"
    for name, spec in automem_services(services).items():
        volume = volume_targets(spec)[option(spec["command"], "--data")]
        if volume is None:
            continue  # anonymous: one per container
        assert volume not in owners, f"{name} and {owners[volume]} share the LMDB volume {volume}"
        owners[volume] = name
    assert volume_targets(services["worker"])["/data"] is None, \
        "replicated workers must not share one named LMDB volume"


def test_bus_is_the_advertised_kafka_listener(services: dict[str, dict[str, Any]]) -> None:
    kafka = services["kafka"]
    env = kafka["environment"]
    advertised = listeners(env["KAFKA_ADVERTISED_LISTENERS"])
    bound = listeners(env["KAFKA_LISTENERS"])
    host, port = BUS.removeprefix("kafka://").split(":")
    internal = env["KAFKA_INTER_BROKER_LISTENER_NAME"]
    assert advertised[internal] == (host, int(port)), "automem's --bus must be the advertised in-network listener"
    assert bound[internal][1] == int(port), "the advertised port must be the bound port of the same listener"
    assert host == "kafka" == kafka.get("hostname"), "the broker's host name is its service name"
    # The host listener: published on the advertised localhost port, bound inside on its own.
    external = [name for name, (advertised_host, _) in advertised.items() if advertised_host == "localhost"]
    assert len(external) == 1, "one listener advertised to host clients"
    _, host_port, container_port = kafka["ports"][0].split(":")
    assert int(host_port) == advertised[external[0]][1]
    assert int(container_port) == bound[external[0]][1]


def test_kafka_kraft_settings_agree(services: dict[str, dict[str, Any]], env: dict[str, str]) -> None:
    kafka = services["kafka"]
    assert kafka["image"].startswith("apache/kafka:")
    cfg = kafka["environment"]
    assert set(cfg["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"}
    node_id = int(cfg["KAFKA_NODE_ID"])
    bound = listeners(cfg["KAFKA_LISTENERS"])
    advertised = listeners(cfg["KAFKA_ADVERTISED_LISTENERS"])
    protocols = dict(item.split(":") for item in cfg["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"].split(","))
    controller_names = cfg["KAFKA_CONTROLLER_LISTENER_NAMES"].split(",")
    assert set(bound) <= set(protocols) and set(advertised) <= set(protocols), \
        "every listener needs a security protocol"
    for name in controller_names:
        assert name in bound, f"controller listener {name} is not in KAFKA_LISTENERS"
        assert name not in advertised, "the controller listener is not advertised to clients"
    voters = cfg["KAFKA_CONTROLLER_QUORUM_VOTERS"].split(",")
    assert len(voters) == 1, "one combined node: a quorum of one"
    voter_id, voter_address = voters[0].split("@")
    voter_host, voter_port = voter_address.rsplit(":", 1)
    assert int(voter_id) == node_id, "the quorum voter must be this node's KAFKA_NODE_ID"
    assert voter_host == kafka["hostname"]
    assert int(voter_port) == bound[controller_names[0]][1], "voter port must be the CONTROLLER listener's"
    assert cfg["KAFKA_INTER_BROKER_LISTENER_NAME"] in advertised
    assert cfg["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"
    for key in ("KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR", "KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR",
                "KAFKA_TRANSACTION_STATE_LOG_MIN_ISR"):
        assert int(cfg[key]) == 1, f"{key} must be 1 on a single broker"
    # CLUSTER_ID: the image refuses to start in KRaft mode without it; a base64 UUID.
    for cluster_id in (cfg["CLUSTER_ID"], env["KAFKA_CLUSTER_ID"]):
        assert len(base64.urlsafe_b64decode(cluster_id + "==")) == 16, f"bad CLUSTER_ID {cluster_id!r}"
    log_dir = cfg["KAFKA_LOG_DIRS"]
    assert volume_targets(kafka).get(log_dir), "the KRaft log dir must be on a named volume"
    probe = " ".join(kafka["healthcheck"]["test"])
    assert "/opt/kafka/bin/kafka-broker-api-versions.sh" in probe
    assert f"localhost:{bound[cfg['KAFKA_INTER_BROKER_LISTENER_NAME']][1]}" in probe


def test_topics_are_the_stream_families(services: dict[str, dict[str, Any]], env: dict[str, str]) -> None:
    init = services["kafka-init"]
    assert init["image"] == services["kafka"]["image"]
    assert init["depends_on"]["kafka"]["condition"] == "service_healthy"
    # Topics are PREFIX.FAMILY, PREFIX from `--bus kafka://HOST:PORT/PREFIX` (none here).
    assert "/" not in BUS.removeprefix("kafka://")
    assert init["environment"]["TOPIC_PREFIX"] == kafka_log_default_prefix()
    assert init["environment"]["STREAM_FAMILIES"].split() == list(FAMILIES)
    script = " ".join(init["command"])
    assert "kafka-topics.sh" in script and "--if-not-exists" in script
    assert '--topic "$TOPIC_PREFIX.$family"' in script
    assert "--bootstrap-server kafka:9092" in script
    assert "retention.ms=-1" in script, "the event log is the source of truth: never expire it"
    assert int(env["WORKERS"]) <= int(env["KAFKA_PARTITIONS"]), "workers beyond the partition count idle"
    assert int(env["KAFKA_MIN_INSYNC_REPLICAS"]) <= int(env["KAFKA_REPLICATION_FACTOR"])


def test_services_wait_for_topics_and_model(services: dict[str, dict[str, Any]]) -> None:
    for name, spec in automem_services(services).items():
        depends = spec.get("depends_on", {})
        assert depends.get("kafka-init", {}).get("condition") == "service_completed_successfully", \
            f"{name} must start after the topics exist"
    assert services["worker"]["depends_on"]["vllm"]["condition"] == "service_healthy"
    assert services["worker"]["deploy"]["replicas"] == "4"  # ${WORKERS:-4} with .env.example
    assert "container_name" not in services["worker"], "a fixed container name prevents scaling"


def test_vllm_serves_lora(services: dict[str, dict[str, Any]], env: dict[str, str]) -> None:
    vllm = services["vllm"]
    assert vllm["image"].startswith("vllm/vllm-openai:")
    command = vllm["command"]
    assert command[0] == env["MODEL"], "the model is `vllm serve`'s positional argument"
    assert option(command, "--served-model-name") == env["MODEL"]
    assert option(command, "--port") == "8000"
    assert "--enable-lora" in command
    rank = int(option(command, "--max-lora-rank"))
    assert rank in VLLM_LORA_RANKS, f"vLLM accepts --max-lora-rank in {sorted(VLLM_LORA_RANKS)}"
    assert int(option(command, "--max-cpu-loras")) >= int(option(command, "--max-loras")) >= 1
    assert int(option(command, "--tensor-parallel-size")) == len(env["VLLM_GPUS"].split(","))
    runtime = vllm["environment"]
    assert runtime["VLLM_ALLOW_RUNTIME_LORA_UPDATING"].lower() == "true"
    assert "/health" in " ".join(vllm["healthcheck"]["test"])
    assert volume_targets(vllm).get("/root/.cache/huggingface"), "keep the weights on a volume"
    # Adapters: the trainer writes where vLLM reads, at the same path in both containers.
    adapters = runtime["VLLM_LORA_RESOLVER_CACHE_DIR"]
    assert volume_targets(vllm)[adapters] == volume_targets(services["trainer"])[adapters] is not None
    assert any(entry.endswith(f"{adapters}:ro") for entry in vllm["volumes"])
    for port in vllm.get("ports", []) + services["kafka"].get("ports", []):
        assert port.startswith("127.0.0.1:"), f"publish on loopback only: {port}"


def test_workers_use_the_served_model(services: dict[str, dict[str, Any]], env: dict[str, str]) -> None:
    policy = option(services["worker"]["command"], "--policy")
    model, _, url = policy.removeprefix("openai:").partition("@")
    assert policy.startswith("openai:") and model == env["MODEL"]
    assert url == "http://vllm:8000/v1"
    assert services["worker"]["environment"].get("OPENAI_API_KEY"), "the openai client needs a key"


def test_gpu_reservations(services: dict[str, dict[str, Any]], env: dict[str, str]) -> None:
    for name, spec in services.items():
        devices = gpu_devices(spec)
        if name not in GPU_SERVICES:
            assert not devices, f"{name} should not reserve a GPU"
            continue
        assert len(devices) == 1 and devices[0]["driver"] == "nvidia", f"{name} needs an nvidia GPU"
        assert devices[0].get("device_ids") and "count" not in devices[0]
    vllm_gpus = set(env["VLLM_GPUS"].split(","))
    trainer_gpus = set(env["TRAINER_GPUS"].split(","))
    assert not vllm_gpus & trainer_gpus, "vLLM and the trainer must not share a GPU"
    assert gpu_devices(services["vllm"])[0]["device_ids"] == [env["VLLM_GPUS"]]
    assert gpu_devices(services["trainer"])[0]["device_ids"] == [env["TRAINER_GPUS"]]
    assert services["trainer"]["build"]["args"]["TORCH_INDEX_URL"] == env["TRAINER_TORCH_INDEX_URL"]


def test_every_variable_is_documented(env: dict[str, str]) -> None:
    text = COMPOSE_FILE.read_text()
    used = set()
    for match in VAR.finditer(text):
        name, op, _ = match.groups()
        if name is None:
            continue
        used.add(name)
        assert name in env or op in (":-", "-"), f"${{{name}}} is neither in .env.example nor defaulted"
    unused = set(env) - used
    assert not unused, f".env.example sets variables compose.yaml never uses: {sorted(unused)}"
    # Defaults in compose.yaml and values in .env.example should not drift apart.
    for match in VAR.finditer(text):
        name, op, default = match.groups()
        if op == ":-" and name in env:
            assert default == env[name], f"${{{name}:-{default}}} differs from .env.example ({env[name]})"


def test_dockerfile_builds_this_project() -> None:
    instructions = dockerfile_instructions()
    assert instructions[0] == ("FROM", "python:3.11-slim")
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "3.11" in pyproject["project"]["requires-python"]
    args = dict(
        (arg.split("=", 1)[0], arg.split("=", 1)[1].strip('"')) for kind, arg in instructions if kind == "ARG"
    )
    torch_pins = [dep for dep in pyproject["project"]["dependencies"] if dep.startswith("torch")]
    assert args["TORCH_SPEC"] in torch_pins, "TORCH_SPEC must equal pyproject's torch pin"
    assert "cpu" in args["TORCH_INDEX_URL"], "the default image is the CPU one"
    cmd = [value for kind, value in instructions if kind == "CMD"][-1]
    assert cmd.startswith('["automem"'), "CMD must be the automem console script, exec form"
    assert pyproject["project"]["scripts"]["automem"], "pyproject declares the automem script"
    copied = set()
    for kind, value in instructions:
        if kind == "COPY":
            sources = value.split()[:-1]
            for source in sources:
                assert (ROOT / source).exists(), f"COPY {source}: no such file in the repository"
                copied.add(source.rstrip("/"))
    needed = set(package_roots()) | {"pyproject.toml", "setup.py", "README.md"}
    assert needed <= copied, f"the image misses {sorted(needed - copied)}"
    ignore = (DEPLOY / "Dockerfile.dockerignore").read_text().splitlines()
    included = {line[1:].rstrip("/") for line in ignore if line.startswith("!")}
    assert "*" in ignore and copied <= included, "Dockerfile.dockerignore must let every COPY source through"


def test_compose_builds_with_the_dockerfile(services: dict[str, dict[str, Any]]) -> None:
    for name, spec in automem_services(services).items():
        build = spec["build"]
        context = (COMPOSE_FILE.parent / build["context"]).resolve()
        assert context == ROOT, f"{name}: the build context is the repository root"
        assert (context / build["dockerfile"]).resolve() == DEPLOY / "Dockerfile"


def test_readme_walks_from_embedded_to_compose() -> None:
    text = (DEPLOY / "README.md").read_text()
    for needle in ("cp .env.example .env", "docker compose up -d", "--scale worker=", "--profile pending",
                   "automem submit", "kafka://localhost:29092"):
        assert needle in text, f"deploy/README.md should show {needle!r}"


def test_docker_compose_config_accepts_it() -> None:
    docker = shutil.which("docker")
    if docker is None:
        pytest.skip("no docker CLI")
    probe = subprocess.run([docker, "compose", "version"], capture_output=True, text=True, timeout=20)
    if probe.returncode != 0:
        pytest.skip("no docker compose plugin")
    result = subprocess.run(
        [docker, "compose", "-f", str(COMPOSE_FILE), "--env-file", str(ENV_FILE),
         "--profile", "pending", "--profile", "tools", "--profile", "train", "--profile", "learn",
         "config", "--quiet"],
        capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 0, result.stderr


def test_the_publisher_loads_promoted_versions_into_the_served_vllm(services: dict[str, dict[str, Any]]) -> None:
    publisher, vllm = services["publisher"], services["vllm"]
    command = publisher["command"]
    assert command[1:3] == ["consume", "publisher"] and "profiles" not in publisher
    assert option(command, "--vllm") == "http://vllm:8000"
    root = option(command, "--adapter-root")
    assert root in volume_targets(vllm) and volume_targets(vllm)[root] == volume_targets(services["trainer"])[root]
    assert publisher["depends_on"]["vllm"]["condition"] == "service_healthy"


# ------------------------------------------------------------- the learning loop ---

def raw_option(raw: dict[str, Any], service: str, flag: str) -> str | None:
    return option(raw["services"][service]["command"], flag)


def test_cli_parse_checks_a_group_s_subcommand() -> None:
    """`automem loop run` is a subcommand of a group: its own options are what must parse."""
    base = ["automem", "loop", "run", "--bus", BUS, "--data", "/data"]
    assert cli_parse(base) is None
    assert cli_parse(base + ["--no-such-option", "1"]) is not None
    assert cli_parse(base + ["--iterations", "0"]) is not None  # below its range
    assert cli_parse(["automem", "loop", "walk"]) == "no command `automem loop walk`"


def test_the_loop_driver_runs_the_whole_learning_system(services: dict[str, dict[str, Any]],
                                                        env: dict[str, str]) -> None:
    loop = services["loop"]
    command = loop["command"]
    assert command[1:3] == ["loop", "run"], "the loop service is `automem loop run`"
    assert cli_parse(command) is None
    assert loop.get("profiles") == ["learn"], "the driver is opt-in: profile learn"
    assert loop.get("restart") == "on-failure:5", \
        "a failed stage exits non-zero and the same command resumes; a finished loop stays down"
    assert option(command, "--bus") == BUS, "on a kafka:// bus the loop is a driver, not an embedded run"
    assert option(command, "--policy") == option(services["worker"]["command"], "--policy"), \
        "the loop asks for the episodes the workers play: the same agent"
    assert option(command, "--reviewer"), "loop 1's reviewer is named, not the default"
    assert option(command, "--iterations") == env["LOOP_ITERATIONS"]
    assert option(command, "--episodes") == env["LOOP_EPISODES"]
    assert option(command, "--max-steps") == env["LOOP_MAX_STEPS"]
    assert option(command, "--loops") == env["LOOP_LOOPS"]
    assert option(command, "--env") == env["LOOP_ENV"]
    assert loop["environment"].get("OPENAI_API_KEY"), "the openai client needs a key"
    depends = loop["depends_on"]
    assert depends["kafka-init"]["condition"] == "service_completed_successfully"
    assert depends["vllm"]["condition"] == "service_healthy"
    # What the driver waits for exists: the scorer and workers in a plain `up`, the trainer in `train`.
    for name in ("worker", "scorer", "publisher"):
        assert "profiles" not in services[name], f"the loop needs {name} in every `up`"
    assert services["trainer"]["profiles"] == ["train"]


def test_the_loop_and_the_trainer_share_the_dataset_files(services: dict[str, dict[str, Any]],
                                                          compose: dict[str, Any]) -> None:
    """DatasetBuilt names files relative to the builder's --data (datasets/<id>/...), and the
    trainer opens them under its own --data: one named volume at DATA/datasets in both."""
    loop, trainer = services["loop"], services["trainer"]
    loop_data, trainer_data = option(loop["command"], "--data"), option(trainer["command"], "--data")
    assert loop_data == trainer_data, "the same relative paths resolve under the same folder"
    target = f"{loop_data}/datasets"
    shared = volume_targets(loop).get(target)
    assert shared is not None and shared in (compose.get("volumes") or {}), \
        f"the loop must mount a named volume at {target}"
    assert volume_targets(trainer).get(target) == shared, f"the trainer must mount {shared} at {target} too"
    # ... while each keeps its own LMDB store (test_state_stores_are_not_shared checks the rest).
    assert volume_targets(loop)[loop_data] != volume_targets(trainer)[trainer_data]
    for name, spec in services.items():
        if shared in volume_targets(spec).values():
            assert volume_targets(spec).get(target) == shared, f"{name} mounts {shared} elsewhere"


def test_the_loop_s_base_is_the_trainer_s(raw: dict[str, Any], services: dict[str, dict[str, Any]]) -> None:
    """The driver refuses a version over another base: both come from one .env variable."""
    base = raw_option(raw, "loop", "--base")
    trainer_base = raw["services"]["trainer"]["environment"]["AUTOMEM_BASE_MODEL"]
    names = {m.group(1) for m in VAR.finditer(base or "")}
    assert len(names) == 1 and base == trainer_base, \
        f"loop --base {base!r} and the trainer's AUTOMEM_BASE_MODEL {trainer_base!r} must be the same ${{VAR}}"
    resolved = option(services["loop"]["command"], "--base")
    assert resolved == services["trainer"]["environment"]["AUTOMEM_BASE_MODEL"]
    # The agent plays the served model, the base of every adapter vLLM will be asked to load.
    assert option(services["loop"]["command"], "--policy").removeprefix("openai:").partition("@")[0] == resolved


def test_every_variable_is_in_the_env_example(env: dict[str, str]) -> None:
    """Every ${VAR} of compose.yaml, defaulted or not, is set (and so explained) in .env.example."""
    used = {m.group(1) for m in VAR.finditer(COMPOSE_FILE.read_text()) if m.group(1)}
    missing = used - set(env)
    assert not missing, f"compose.yaml uses variables .env.example does not set: {sorted(missing)}"


def test_readme_explains_the_whole_learning_loop() -> None:
    text = (DEPLOY / "README.md").read_text()
    assert "## The whole learning loop" in text
    section = text.split("## The whole learning loop", 1)[1].split("\n## ", 1)[0]
    for needle in ("docker compose --profile train --profile learn up -d",
                   "automem loop status --bus kafka://kafka:9092 --data /data",
                   "automem loop report", "-o ", "resume", "GPU"):
        assert needle in section, f"the learning loop section should show {needle!r}"
