"""NetHack (NLE's NetHackChallenge-v0) as a seeded text game, scored by BALROG's progression.

NetHackChallenge refuses seed changes (its `seed` raises, by design of the competition);
the env here sets the seeds on the underlying game before each reset instead, so an episode
is a function of the seed: core, display and level-generator seeds are all derived from the
one int, reseeding is off, and the moon phase comes from the seed (`fix_moon_phase`).
"""

from __future__ import annotations

from automem.engine.envs.common import quiet_warnings
from automem.engine.envs.nle_base import NLETextEnv
from automem.engine.envs.nle_text import BL_DEPTH, BL_XP, Frame

# BALROG's NetHack progression table: balrog/environments/nle/achievements.json in
# github.com/balrog-ai/BALROG (read through a fork, suning-git/BALROG_expt; BALROG's earlier
# fmrl/environments/nle/achievements.json has the same values except that level 1 of each
# was later set to 0). Each figure is the empirical probability that a human game of the
# NetHack Learning Dataset (NLD-NAO) that reached the dungeon level / experience level went
# on to ascend (BALROG paper; BartekCupial/nle-progress describes the same metric).
# BALROG's Progress class keeps the maximum over the episode of the "Dlvl:<depth>" and
# "Xp:<experience level>" entries (balrog/environments/nle/progress.py), as done here.
DLVL_PROGRESS = (
    0.0, 0.015392269075361172, 0.017539535798967013, 0.021221378364235505,
    0.026482449457437766, 0.035428686118173014, 0.04846098359243788, 0.0695812141543123,
    0.09770935198701912, 0.12558597019922987, 0.1612677822768481, 0.20612854836308672,
    0.2566039887664476, 0.29247245425293333, 0.30881240110986263, 0.3249071349317381,
    0.34007883702829594, 0.3526455577544006, 0.3654881095022441, 0.37895667923256743,
    0.39293747679675045, 0.40832255575976223, 0.4258360748858015, 0.445181408701678,
    0.46637631565303056, 0.5067605633802816, 0.5543572044866264, 0.6015648510382184,
    0.6465049415992812, 0.6913110342176086, 0.7101094299371864, 0.7176456494828894,
    0.7232124894378948, 0.7284405900470092, 0.7327761924174481, 0.7368528917489855,
    0.7421458943978863, 0.7471321695760599, 0.753731343283582, 0.7610398408061306,
    0.76740810314648, 0.7725338491295938, 0.7771626297577855, 0.7812567949554251,
    0.7858986134802957, 0.7890256738822022, 0.7929718875502008, 0.7967408445768355,
    0.8018467495718222, 0.8067964442444019,
)  # index i: dungeon depth i + 1 (1..50)
XL_PROGRESS = (
    0.0, 0.01847840456172601, 0.02081163581974355, 0.024160136550546978,
    0.029108986017138745, 0.036887590648350246, 0.0507583712345433, 0.07453595273884014,
    0.11704996473565571, 0.17909953770432294, 0.25480449090205187, 0.33264942385807844,
    0.41442590519821954, 0.49403949403949404, 0.5778823703813513, 0.6261221999477034,
    0.656281764586298, 0.6810218550418937, 0.7015328516442704, 0.7174494081710576,
    0.7286977843944303, 0.7371004909327723, 0.7443446629532795, 0.7513449678519879,
    0.7585537128343045, 0.7642151855635002, 0.7703376822716808, 0.7759810263044415,
    0.7783345263660224, 0.7804561949196475,
)  # index i: experience level i + 1 (1..30)
OBSERVATION_KEYS = ("glyphs", "chars", "tty_chars", "tty_cursor", "blstats", "message", "inv_letters", "inv_strs")
STALL_STEPS = 150  # BALROG's no_progress_timeout: key presses without the turn counter moving


def balrog_progress(depth: int, experience_level: int) -> float:
    """The BALROG table value of one state (0 outside the table, as BALROG's lookups)."""
    d = DLVL_PROGRESS[depth - 1] if 1 <= depth <= len(DLVL_PROGRESS) else 0.0
    x = XL_PROGRESS[experience_level - 1] if 1 <= experience_level <= len(XL_PROGRESS) else 0.0
    return max(d, x)


class NetHackEnv(NLETextEnv):
    """The full game, a random role as in the NetHack Challenge and BALROG."""

    name = "nethack"

    def __init__(self, task: str = "challenge", observation: str = "automem") -> None:
        with quiet_warnings():
            from nle.env.tasks import NetHackChallenge

            env = NetHackChallenge(
                observation_keys=OBSERVATION_KEYS, fix_moon_phase=True, no_progress_timeout=STALL_STEPS
            )
        super().__init__(task, env, observation)
        self._best = 0.0

    def _begin(self, frame: Frame) -> None:
        self._best = 0.0
        self._after(frame, {})

    def _after(self, frame: Frame, info: dict) -> list[tuple[str, str, float]]:
        bl = frame.blstats
        self._best = max(self._best, balrog_progress(int(bl[BL_DEPTH]), int(bl[BL_XP])))
        return []

    def progression(self) -> float:
        """BALROG's progression: the best table value reached this episode, in [0, 1]."""
        return self._best
