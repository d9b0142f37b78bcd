"""New runs' ids and generated names ("brave-otter-417", as MLflow gives runs that have none)."""

from __future__ import annotations

import os
import random
import time

__all__ = ["generate_run_name", "new_run_id"]

_ADJECTIVES = [
    "amber",
    "bold",
    "brave",
    "bright",
    "calm",
    "clever",
    "crisp",
    "dapper",
    "eager",
    "fair",
    "fast",
    "gentle",
    "glad",
    "grand",
    "happy",
    "humble",
    "jolly",
    "keen",
    "kind",
    "lively",
    "lucid",
    "merry",
    "mighty",
    "neat",
    "noble",
    "polite",
    "proud",
    "quick",
    "quiet",
    "rare",
    "sharp",
    "shiny",
    "silent",
    "smart",
    "snappy",
    "solid",
    "steady",
    "sunny",
    "swift",
    "tidy",
    "vivid",
    "warm",
    "wise",
    "witty",
    "zesty",
]
_NOUNS = [
    "ant",
    "badger",
    "bear",
    "bee",
    "bison",
    "cat",
    "colt",
    "crane",
    "deer",
    "dingo",
    "dove",
    "eagle",
    "elk",
    "falcon",
    "finch",
    "fox",
    "frog",
    "gecko",
    "goat",
    "hare",
    "hawk",
    "heron",
    "horse",
    "ibis",
    "jay",
    "koala",
    "lark",
    "lemur",
    "lion",
    "lynx",
    "mole",
    "moose",
    "newt",
    "otter",
    "owl",
    "panda",
    "pike",
    "puma",
    "quail",
    "raven",
    "robin",
    "seal",
    "shark",
    "sloth",
    "snail",
    "swan",
    "tiger",
    "trout",
    "wasp",
    "whale",
    "wolf",
]

_rng = random.Random()


def generate_run_name() -> str:
    return f"{_rng.choice(_ADJECTIVES)}-{_rng.choice(_NOUNS)}-{_rng.randrange(1000):03d}"


def new_run_id() -> str:
    """A run id in MLflow's form (32 hex digits) that is a time-ordered UUID (version 7, RFC
    9562): 48 bits of Unix milliseconds, then 74 random bits.

    Runs created one after another get neighbouring ids, so their rows (the run, its tags,
    params and metrics, all keyed by run id) land on the same few pages of each table instead
    of one random page per table: a new run writes fewer pages, and a search of recent runs
    reads fewer. Ids of one millisecond still differ in their random bits, drawn from a
    generator of nbtrack's own (a user's ``random.seed`` does not touch it), seeded by the
    operating system and seeded again in a forked child.
    """
    value = (time.time_ns() // 1_000_000) << 80 | _id_rng.getrandbits(80)
    # version 7 in bits 76-79, the RFC's variant (0b10) in bits 62-63
    value = (value & ~(0xF << 76) & ~(0x3 << 62)) | (0x7 << 76) | (0x2 << 62)
    return f"{value:032x}"


_id_rng = random.Random()  # seeded from os.urandom, as .seed() is
if hasattr(os, "register_at_fork"):  # a child must not draw the ids its parent draws
    os.register_at_fork(after_in_child=_id_rng.seed)
