"""Published figures to set beside a run's, each with its source: data, not code.

Figures are progression % with their standard error as published (None where the source
gives none). A row is printed beside a run when its model matches the run's, or on request.
"""

from __future__ import annotations

import msgspec

SOURCES = {
    "balrog-leaderboard": "BALROG leaderboard: github.com/balrog-ai/experiments, submissions/LLM/<submission>/"
                          "summary.json (read at 989931c5, 2025-07-23); naive agent, 16-step history, temperature 0, "
                          "max_tokens 1024, a random seed per episode",
    "automem-paper": "AutoMem: Automated Learning of Memory as a Cognitive Skill (arXiv 2607.01224), its Crafter "
                     "figures; no standard errors given",
    "automem-paper-reported": "the AutoMem paper's progression table (arXiv 2607.01224) as quoted by "
                              "aiweekly.co/alerts/stanford-automem-lifts-qwen-32b-to-match-claude-opus-45 (the paper's "
                              "own table could not be read here); no standard errors or agent settings given",
}


class Published(msgspec.Struct, frozen=True, kw_only=True):
    model: str
    agent: str  # history-16 | memory
    source: str  # a key of SOURCES
    envs: dict[str, tuple[float, float | None]]  # env -> (progression %, standard error %)
    label: str = ""  # which of a source's rows for the same model and agent
    submission: str = ""

    @property
    def name(self) -> str:
        return f"{self.model} ({self.label or self.agent}, {self.source})"


def _board(model: str, submission: str, crafter: tuple[float, float], minihack: tuple[float, float],
           nethack: tuple[float, float]) -> Published:
    return Published(model=model, agent="history-16", source="balrog-leaderboard", submission=submission,
                     envs={"crafter": crafter, "minihack": minihack, "nethack": nethack})


def _paper(agent: str, label: str, crafter: float) -> Published:
    return Published(model="Qwen2.5-32B-Instruct", agent=agent, source="automem-paper", label=label,
                     envs={"crafter": (crafter, None)})


def _reported(model: str, label: str, crafter: float, minihack: float, nethack: float) -> Published:
    return Published(model=model, agent="unstated", source="automem-paper-reported", label=label,
                     envs={"crafter": (crafter, None), "minihack": (minihack, None), "nethack": (nethack, None)})


ROWS: tuple[Published, ...] = (
    _board("Llama-3.2-1B-Instruct", "20241030_naive-Llama-3.2-1B-Instruct", (12.73, 1.91), (5.0, 3.45), (0.0, 0.0)),
    _board("Llama-3.2-3B-Instruct", "20241030_naive-Llama-3.2-3B-Instruct", (17.27, 2.79), (2.5, 2.47), (0.0, 0.0)),
    _board("Llama-3.1-8B-Instruct", "20241101_naive-Llama-3.1-8B-Instruct", (25.45, 3.23), (5.0, 3.45), (0.0, 0.0)),
    _board("Qwen2.5-7B-Instruct", "20241115_naive-Qwen2.5-7B-it", (16.36, 3.03), (0.0, 0.0), (0.0, 0.0)),
    _board("Qwen2.5-72B-Instruct", "20241115_naive-Qwen2.5-72B-Instruct", (27.27, 3.58), (5.0, 3.44), (0.31, 0.28)),
    _board("Mistral-Nemo-Instruct-2407", "20241209_naive-mistral-nemo-instruct", (27.73, 2.69), (2.5, 2.47),
           (0.31, 0.28)),
    _board("Llama-3.3-70B-Instruct", "20241209_naive_Llama-3.3-70B-Instruct", (28.64, 4.07), (5.0, 3.45), (0.37, 0.33)),
    _board("gpt-4o-2024-05-13", "20240924_naive-GPT4o", (33.10, 2.32), (10.0, 4.74), (0.37, 0.37)),
    _paper("history-16", "BALROG baseline", 19.55),
    _paper("memory", "v0 memory agent", 25.00),
    _paper("memory", "after loop 1 and loop 2", 51.36),
    _reported("Qwen2.5-32B-Instruct", "AutoMem, after loop 1 and loop 2", 51.36, 30.00, 1.85),
    _reported("Claude-Opus-4.5", "the paper's frontier reference", 49.5, 27.5, 2.0),
    _reported("Gemini-3.1-Pro-Thinking", "the paper's frontier reference", 55.0, 27.5, 2.6),
)


def _key(model: str) -> str:
    """A model name as matched: its last path part, lower case ("meta-llama/Llama-3.2-1B-Instruct")."""
    return model.rsplit("/", 1)[-1].strip().lower()


def matching(model: str) -> list[Published]:
    """The published rows of `model`, whatever path or case the run's name has."""
    return [row for row in ROWS if _key(row.model) == _key(model)]
