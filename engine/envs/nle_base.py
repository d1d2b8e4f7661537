"""The driver shared by NetHack and MiniHack: seeding, action words, --More--, game over.

An action is one key press as a player would name it ("north", "far east", "eat", "search")
or a single key ("f" to answer "What do you want to eat? [f or ?*]"). After the key,
--More-- pauses are read into the message and passed with a space, as BALROG's `skip_more`
does, so one agent step is one decision; menus and questions stay open for the agent to
answer. When the hero dies, the end-of-game questions are dismissed without reading them:
the tombstone and top-ten list show the year and earlier games of this process, which would
make the text depend on more than the seed.
"""

from __future__ import annotations

from typing import Any

import msgspec

from automem.engine.envs import nle_balrog, nle_text
from automem.engine.envs.base import StepResult
from automem.engine.envs.common import (
    ActionNames,
    derive_seed,
    normalize,
    quiet_warnings,
)
from automem.engine.envs.nle_text import BL_DEPTH, BL_HP, BL_X, BL_XP, BL_Y, Frame
from automem.schemas.events import EnvFacts

ESC, SPACE, ENTER, ATTRIBUTES = 27, 32, 13, 24  # ATTRIBUTES is ^X
MAX_PAUSES = 64  # --More-- pages or end-of-game screens passed after one key, at most
Outcome = tuple[str, str, float]


def _meta(ch: str) -> int:
    return 0x80 | ord(ch)


# name -> key, words as BALROG's NetHack action list names them
_DIRECTIONS = {"north": "k", "south": "j", "east": "l", "west": "h",
               "northeast": "u", "northwest": "y", "southeast": "n", "southwest": "b"}  # fmt: skip
WORDS: dict[str, int] = {
    **{name: ord(key) for name, key in _DIRECTIONS.items()},
    **{f"far {name}": ord(key.upper()) for name, key in _DIRECTIONS.items()},
    "up": ord("<"), "down": ord(">"), "wait": ord("."), "search": ord("s"),
    "more": ENTER, "esc": ESC, "space": SPACE,
    "apply": ord("a"), "cast": ord("Z"), "chat": _meta("c"), "close": ord("c"), "dip": _meta("d"),
    "drop": ord("d"), "droptype": ord("D"), "eat": ord("e"), "engrave": ord("E"),
    "enhance": _meta("e"), "fight": ord("F"), "fire": ord("f"), "force": _meta("f"),
    "inventory": ord("i"), "invoke": _meta("i"), "jump": _meta("j"), "kick": 4,  # ^D
    "look": ord(":"), "loot": _meta("l"), "monster": _meta("m"), "offer": _meta("o"),
    "open": ord("o"), "pay": ord("p"), "pickup": ord(","), "pray": _meta("p"),
    "puton": ord("P"), "quaff": ord("q"), "quiver": ord("Q"), "read": ord("r"),
    "remove": ord("R"), "ride": _meta("R"), "rub": _meta("r"), "sit": _meta("s"),
    "swap": ord("x"), "takeoff": ord("T"), "takeoffall": ord("A"), "throw": ord("t"),
    "travel": ord("_"), "turn": _meta("t"), "twoweapon": ord("X"), "untrap": _meta("u"),
    "wear": ord("W"), "wield": ord("w"), "wipe": _meta("w"), "zap": ord("z"),
}  # fmt: skip
ALIASES = {
    "go up": "up", "ascend": "up", "go down": "down", "descend": "down", "rest": "wait",
    "enter": "more", "return": "more", "confirm": "more", "escape": "esc", "cancel": "esc",
    "take off": "takeoff", "put on": "puton",
}  # fmt: skip
LETTERS = [chr(c) for c in range(ord("a"), ord("z") + 1)] + [chr(c) for c in range(ord("A"), ord("Z") + 1)]
MOVE_VERBS = ("move", "go", "walk", "run")  # "move north" means north, "run north" far north
# NetHack's ways a game ends (nle.nethack game_end_types, in their order); 0..10 are deaths
HOW_DONE = ("died", "choked", "died of poisoning", "starved", "drowned", "burned to death",
            "dissolved", "crushed", "turned to stone", "turned to slime", "genocided",
            "panicked", "tricked", "quit", "escaped the dungeon", "ascended")  # fmt: skip
LAST_DEATH = 10
FACT_FIELDS = ("gold", "hunger", "encumbrance", "AC", "Pw", "turn", "score", "alignment", "conditions")


def _said(pages: list[Frame], last: Frame | None) -> list[str]:
    """automem's messages of a step: each --More-- page's (its window when the message row is
    empty), then the screen's now (none when NLE ended the game itself)."""
    said = [nle_text.message(page) or _one_line(nle_text.window(page)) for page in pages]
    return said + ([nle_text.message(last)] if last is not None else [])


def _one_line(lines: list[str]) -> str:
    """A --More-- window as one message: "Things that are here: a corpse, 7 darts"."""
    text = ""
    for part in (" ".join(line.replace(nle_text.MORE_TEXT, "").split()) for line in lines):
        if part:
            text += ("" if not text else " " if text[-1] in ":.!?" else ", ") + part
    return text


class NLETextEnv:
    """One NLE game (NetHackChallenge or a MiniHack task) behind the text-env protocol.

    Subclasses say how progress is measured through `_begin` and `_after`."""

    name = "nle"
    fallback_action = "search"

    def __init__(self, task: str, env: Any, observation: str = "automem") -> None:
        self.task, self.observation = task, observation
        self._env = env
        keys = [int(a) for a in env.actions]
        self._index = {key: keys.index(key) for key in keys}  # key -> NLE action index
        words = [name for name, key in WORDS.items() if key in self._index]
        self._names = ActionNames(words, {a: n for a, n in ALIASES.items() if n in words})
        self._valid = words + [ch for ch in LETTERS if ord(ch) in self._index]
        names = (*Frame.__dataclass_fields__, "program_state")
        self._slot = {k: env._observation_keys.index(k) for k in names}  # array name -> NLE slot
        self._final: Frame | None = None
        quit_game = env._quit_game

        def keep_final_state(observation: tuple, done: bool) -> None:
            """NLE quits a game whose task ended inside step() and then returns the arrays
            it overwrote while quitting: keep the state the task ended in."""
            self._final = Frame.of(self._arrays(observation))
            with quiet_warnings():  # NLE warns when a menu left open stops its tidy quit
                quit_game(observation, done)

        env._quit_game = keep_final_state
        self._character = ""
        self._frame: Frame | None = None
        self._last: StepResult | None = None
        self._text = ""
        self._contexts = ("", "")

    # -------------------------------------------------------------- protocol

    def reset(self, seed: int) -> tuple[str, EnvFacts]:
        """Seed NetHack's core, display and level-generator generators from one int."""
        core, disp, lgen = (derive_seed(seed, f"nle/{name}") for name in ("core", "disp", "lgen"))
        self._env.nethack._pynethack.set_initial_seeds(core, disp, False, lgen)
        self._env.reset()
        self._last = None
        pages: list[Frame] = []
        self._pass_pauses(pages)
        first = Frame.of(self._arrays())  # BALROG's first screen: the welcome, before ^X is read
        self._character = self._read_character()
        self._frame = Frame.of(self._arrays())
        self._begin(self._frame)
        view = nle_text.look(self._frame)
        self._text = self._show(view, [self._character, *_said(pages, first)], "", [*pages, first])
        return self._text, self._facts(self._frame, view)

    def step(self, action: str) -> StepResult:
        if self._frame is None:
            raise RuntimeError("call reset(seed) before step()")
        if self._last is not None and self._last.done:
            return msgspec.structs.replace(
                self._last, reward=0.0, action=self.fallback_action, valid=False,
                error="the episode is over; reset to play again", outcomes=(),
            )  # fmt: skip
        key, executed, error = self._parse(action)
        before, self._final = self._frame, None
        _, reward, term, trunc, info = self._env.step(self._index[key])
        done = bool(term or trunc)
        pages: list[Frame] = []
        if not done and not self._game_over():
            extra, done, info = self._pass_pauses(pages, info)
            reward += extra
        over = info.get("end_status") == self._env.StepStatus.DEATH or (self._game_over() and not done)
        frame = self._final or Frame.of(self._arrays())
        messages = _said(pages, None if over and done else frame)
        if over:  # after the game come the tombstone and top-ten list: keep the last real state
            how = int(self._env.nethack.how_done())
            if not done:
                extra, info = self._finish_game()
                reward, done = reward + extra, True
            end = HOW_DONE[how] if 0 <= how < len(HOW_DONE) else "game over"
            outcomes = self._game_end(before, messages, how)
            facts = self._facts(before, nle_text.look(before), end)
            if how <= LAST_DEATH:
                facts = msgspec.structs.replace(facts, health=0.0)
            text = self._show(None, messages, end, [*pages, frame])
        else:
            self._frame = frame
            outcomes = self._changes(before, frame) + self._after(frame, info)
            end = self._end_status(info) if done else ""
            view = nle_text.look(frame)
            facts = self._facts(frame, view, end)
            text = self._show(view, messages, end, [*pages, frame])
        self._text = text
        self._last = StepResult(
            observation=text, reward=float(reward), done=done, action=executed, valid=not error,
            error=error, facts=facts, outcomes=tuple(outcomes),
        )  # fmt: skip
        return self._last

    def valid_actions(self) -> list[str]:
        return list(self._valid)

    def contexts(self) -> tuple[str, str]:
        """The current observation as BALROG splits it: long-term (kept in a history) and
        short-term (shown with the current step only); automem's text is all long-term."""
        return self._contexts

    def progression(self) -> float:
        raise NotImplementedError

    def close(self) -> None:
        self._env.close()
        self._frame = None

    # -------------------------------------------------------------- hooks for the games

    def _begin(self, frame: Frame) -> None:
        """A new episode began with this frame: progress trackers start here."""
        raise NotImplementedError

    def _after(self, frame: Frame, info: dict) -> list[Outcome]:
        """The game went on to this frame; returns the outcomes the game itself defines."""
        raise NotImplementedError

    # -------------------------------------------------------------- internals

    def _show(self, view: nle_text.View | None, messages: list[str], end: str, pages: list[Frame]) -> str:
        """The observation text in this env's format, its contexts kept for `contexts()`.
        `pages`: the screens of this step, every --More-- passed, the last one shown now."""
        if self.observation == "balrog":
            last = pages[-1]
            self._contexts = nle_balrog.contexts(
                nle_balrog.auto_more([page.tty_chars for page in pages]), last.glyphs, last.blstats,
                last.tty_chars, last.tty_cursor, last.inv_strs, last.inv_letters,
            )  # fmt: skip
            return f"{self._contexts[1]}\n{self._contexts[0]}"
        text = nle_text.render(view, messages, end)
        self._contexts = (text, "")
        return text

    def _arrays(self, observation: tuple | None = None) -> dict:
        """NLE's current arrays by name (not copies: the next key overwrites them)."""
        observation = observation if observation is not None else self._env.last_observation
        return {name: observation[slot] for name, slot in self._slot.items()}

    def _game_over(self) -> bool:
        return bool(self._env.last_observation[self._slot["program_state"]][0])

    def _parse(self, action: str) -> tuple[int, str, str]:
        """(key, executed name, error): a single character is that key, else a word."""
        raw = action.strip()
        if len(raw) == 1 and ord(raw) in self._index:
            return ord(raw), raw, ""
        name = self._names.match(raw)
        verb, _, rest = normalize(raw).partition(" ")
        if name is None and verb in MOVE_VERBS and rest:
            name = self._names.match(("far " if verb == "run" else "") + rest)
        if name is not None:
            return WORDS[name], name, ""
        error = (
            f"unknown action {raw[:40]!r}: use a direction (north, far east, ...), a command "
            "word (search, eat, open, pickup, down, esc, more, ...) or a single key letter"
        )
        return WORDS[self.fallback_action], self.fallback_action, error

    def _read_character(self) -> str:
        """Who the hero is (role, race, alignment, god), read off the ^X screen, which takes
        no game time: NLE's reset passes the welcome message that says it unread."""
        self._env.step(self._index[ATTRIBUTES])
        lines = [line.strip() for line in nle_text.window(Frame.of(self._arrays()))]
        for _ in range(MAX_PAUSES):
            if not self._arrays()["internal"][1:4].any():
                break
            self._env.step(self._index[ESC])
        start = lines.index("Background:") + 1 if "Background:" in lines else len(lines)
        about = []
        for line in lines[start:]:
            if not line or line.startswith(("You are in ", "You entered ")):
                break
            about.append(line)
        return " ".join(about)

    def _pass_pauses(self, pages: list[Frame], info: dict | None = None) -> tuple[float, bool, dict]:
        """Pass every --More-- until the game waits for a real decision; `pages` gets each
        screen passed."""
        reward, done, info = 0.0, False, info or {}
        for _ in range(MAX_PAUSES):
            arrays = self._arrays()
            if done or self._game_over() or not nle_text.more_pending(arrays):
                break
            pages.append(Frame.of(arrays))
            _, r, term, trunc, info = self._env.step(self._index[SPACE])
            reward, done = reward + r, bool(term or trunc)
        return reward, done, info

    def _finish_game(self) -> tuple[float, dict]:
        """Dismiss the end-of-game questions and screens unread, until NLE reports the end."""
        reward = 0.0
        for _ in range(MAX_PAUSES):
            _, r, term, trunc, info = self._env.step(self._index[ESC])
            reward += r
            if term or trunc:
                return reward, info
        raise RuntimeError("NetHack did not end after the game was over")

    @staticmethod
    def _end_status(info: dict) -> str:
        """NLE's end status in words: death, task successful, aborted."""
        return getattr(info.get("end_status"), "name", "ended").lower().replace("_", " ")

    @staticmethod
    def _game_end(before: Frame, messages: list[str], how: int) -> list[Outcome]:
        """A death (with the damage that caused it), or another end such as leaving the dungeon."""
        last = next((m for m in reversed(messages) if m), "")
        detail = (HOW_DONE[how] if 0 <= how < len(HOW_DONE) else "game over") + (f": {last}" if last else "")
        if how > LAST_DEATH:
            return [("game_over", detail, 0.0)]
        hp = int(before.blstats[BL_HP])
        return [("damage", f"HP {hp}->0", float(hp)), ("death", detail, 1.0)]

    @staticmethod
    def _changes(before: Frame, after: Frame) -> list[Outcome]:
        """Level changes (dungeon depth, experience level) and damage between two frames.

        A level outcome's value is the change (up a staircase or a level drained: negative),
        so that only gains count as progress."""
        outcomes: list[Outcome] = []
        b, a = before.blstats, after.blstats
        for field, label in ((BL_DEPTH, "depth"), (BL_XP, "experience level")):
            if int(a[field]) != int(b[field]):
                outcomes.append(("level", f"{label} {int(b[field])}->{int(a[field])}", float(int(a[field]) - int(b[field]))))
        if int(a[BL_HP]) < int(b[BL_HP]):
            outcomes.append(("damage", f"HP {int(b[BL_HP])}->{int(a[BL_HP])}", float(b[BL_HP] - a[BL_HP])))
        return outcomes

    def _facts(self, frame: Frame, view: nle_text.View, end: str = "") -> EnvFacts:
        inventory: dict[str, int] = {}
        for letter, text in view.inventory:  # "37 +0 ya (in quiver)" -> {"d - +0 ya (in quiver)": 37}
            count, _, rest = text.partition(" ")
            counted = count.isdigit() or count in ("a", "an")
            inventory[f"{letter} - {rest if counted else text}"] = int(count) if count.isdigit() else 1
        extra = {k: view.status[k] for k in FACT_FIELDS}
        extra["character"] = self._character
        if end:
            extra["end"] = end
        bl = frame.blstats
        return EnvFacts(
            position=(int(bl[BL_X]), int(bl[BL_Y])),
            health=float(bl[BL_HP]),
            inventory=dict(sorted(inventory.items())),
            depth=int(bl[BL_DEPTH]),
            level=int(bl[BL_XP]),
            nearby=tuple(f"{name} {spot}" for name, spots in view.nearby for spot in spots),
            extra=extra,
        )
