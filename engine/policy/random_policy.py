"""A seeded agent that speaks the command protocol with random valid commands and actions.

The baseline for experiments and the workhorse of tests and benchmarks: it exercises
every part of the runtime (LOG writes, PLAN lookups, actions) without a model. Given an
answer prefix (a small structure's `<|ACTION|>`, `<|APPEND|>file|`, `<|SEARCH|>*|`), it
continues it as a model would: an action, a line, a keyword.
"""

from __future__ import annotations

import random

from automem.engine.policy.base import Completion, PolicyRequest

WORDS = ("tree", "water", "stone", "table", "zombie", "door", "stairs", "food", "north", "east")


class RandomPolicy:
    name = "random"

    def __init__(self, seed: int = 0) -> None:
        self.rng = random.Random(seed)

    def for_episode(self, seed: int) -> RandomPolicy:
        """A generator of the episode's own, seeded by it: interleaved episodes stay apart."""
        return RandomPolicy(seed)

    def complete(self, request: PolicyRequest) -> Completion:
        rng = self.rng
        files = list(request.files) or ["notes.txt"]
        parts: list[str] = []
        if request.phase == "act":  # a baseline agent: the action's name and nothing else
            return Completion(text=rng.choice(request.valid_actions or ("noop",)), model=self.name)
        if request.phase == "probe":  # a memory probe's reader: maybe a lookup, then a guess
            guess = rng.choice((str(rng.randrange(20)), f"{rng.randrange(5)} {rng.choice(('north', 'south'))}",
                                rng.choice(WORDS)))
            if request.messages[-1]["role"] == "assistant":  # primed with <|ANSWER|>
                return Completion(text=guess + "<|END|>", model=self.name)
            if rng.random() < 0.4:
                return Completion(text=f"<|SEARCH|>{rng.choice(files)}|{rng.choice(WORDS)}<|END|>", model=self.name)
            return Completion(text=f"<|ANSWER|>{guess}<|END|>", model=self.name)
        if request.messages and request.messages[-1]["role"] == "assistant":  # continue the structure's prefix
            prefix, actions = request.messages[-1]["content"], request.valid_actions or ("noop",)
            if prefix.endswith("<|ACTION|>"):
                return Completion(text=f"{rng.choice(actions)}<|END|>", model=self.name)
            if request.phase == "log":  # the rest of a line, e.g. after <|APPEND|>actions_log.txt|
                return Completion(text=f"saw {rng.choice(WORDS)} {rng.randrange(100)}<|END|>", model=self.name)
            return Completion(text=f"{rng.choice(WORDS)}<|END|>", model=self.name)  # a lookup's keyword
        if request.phase == "log":
            for _ in range(rng.randrange(3)):
                name, word = rng.choice(files), rng.choice(WORDS)
                kind = rng.random()
                if kind < 0.7:
                    parts.append(f"<|APPEND|>{name}|saw {word} {rng.randrange(100)}<|END|>")
                elif kind < 0.85:
                    parts.append(f"<|SEARCH|>{name}|{word}<|END|>")
                else:
                    parts.append(f"<|WRITE|>{name}|{word} {rng.randrange(100)}<|END|>")
            parts.append("<|DONE|>")
        else:
            if rng.random() < 0.3:
                parts.append(f"<|SEARCH|>{rng.choice(files)}|{rng.choice(WORDS)}<|END|>")
            actions = request.valid_actions or ("noop",)
            parts.append(f"<|ACTION|>{rng.choice(actions)}<|END|>")
        return Completion(text="".join(parts), model=self.name)
