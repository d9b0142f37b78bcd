"""Readable generated run names ("brave-otter-417"), as MLflow gives runs that have none."""

from __future__ import annotations

import random

__all__ = ["generate_run_name"]

_ADJECTIVES = (
    "amber bold brave bright calm clever crisp dapper eager fair fast gentle glad grand happy "
    "humble jolly keen kind lively lucid merry mighty neat noble polite proud quick quiet rare "
    "sharp shiny silent smart snappy solid steady sunny swift tidy vivid warm wise witty zesty"
).split()
_NOUNS = (
    "ant badger bear bee bison cat colt crane deer dingo dove eagle elk falcon finch fox frog "
    "gecko goat hare hawk heron horse ibis jay koala lark lemur lion lynx mole moose newt otter "
    "owl panda pike puma quail raven robin seal shark sloth snail swan tiger trout wasp whale wolf"
).split()

_rng = random.Random()


def generate_run_name() -> str:
    return f"{_rng.choice(_ADJECTIVES)}-{_rng.choice(_NOUNS)}-{_rng.randrange(1000):03d}"
