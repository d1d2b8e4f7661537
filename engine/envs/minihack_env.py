"""MiniHack tasks as seeded text games, rendered and driven exactly like NetHack.

The task list (`MINIHACK_IDS` in the registry) follows BALROG's MiniHack suite
(balrog/config/config.yaml: 8 tasks, 5 seeds, 100 steps) but for its two Boxoban tasks,
whose level files minihack downloads on first use (impossible here; their level choice also
uses Python's unseeded `random`). River (a boulder puzzle like Boxoban) and
Room-Ultimate-15x15 (dark, with monsters and traps) stand in. KeyRoom was left out: its
step() applies the key by itself whenever the APPLY key is pressed, which collides with
answering item prompts by letter.

Settings follow BALROG's minihack_kwargs (random role "@", autopickup off) with two
differences that keep one vocabulary across the NLE games: every task gets the full
keyboard as NetHack does, less "<" as in MiniHack's own full set (climbing out of level 1
would end the game); BALROG keeps each task's set, often 8 moves with no "search" to fall
back to. And the step limit is the engine's (NLE's is set high), so one agent step counts
once even when --More-- pages are passed.
"""

from __future__ import annotations

from automem.engine.envs import MINIHACK_IDS
from automem.engine.envs.common import quiet_warnings
from automem.engine.envs.nle_base import NLETextEnv, Outcome
from automem.engine.envs.nle_text import Frame

NLE_STEP_LIMIT = 1_000_000


class MiniHackEnv(NLETextEnv):
    """One MiniHack task; progression is 1 once the task is solved, else 0."""

    name = "minihack"

    def __init__(self, task: str = next(iter(MINIHACK_IDS)), observation: str = "automem") -> None:
        with quiet_warnings():
            import gymnasium
            import minihack  # noqa: F401  (registers the MiniHack-* ids)
            from gymnasium.envs.registration import load_env_creator
            from nle import nethack

            spec = gymnasium.spec(MINIHACK_IDS[task])
            assert isinstance(spec.entry_point, str)  # MiniHack registers its ids by import path
            env = load_env_creator(spec.entry_point)(
                **spec.kwargs,
                observation_keys=("glyphs", "chars", "blstats", "message"),
                actions=tuple(a for a in nethack.ACTIONS if a != nethack.MiscDirection.UP),
                character="@",
                autopickup=False,
                allow_all_yn_questions=True,
                allow_all_modes=True,
                max_episode_steps=NLE_STEP_LIMIT,
            )
        super().__init__(task, env, observation)
        self._solved = False

    def _begin(self, frame: Frame) -> None:
        self._solved = False

    def _after(self, frame: Frame, info: dict) -> list[Outcome]:
        if info.get("end_status") == self._env.StepStatus.TASK_SUCCESSFUL and not self._solved:
            self._solved = True
            return [("achievement", "task solved", 1.0)]
        return []

    def progression(self) -> float:
        """Task success, 0 or 1 (MiniHack's end status; BALROG scores reward >= 1 the same)."""
        return 1.0 if self._solved else 0.0
