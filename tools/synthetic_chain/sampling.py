"""Seeded draws: weighted picks and samples, and largest-remainder quotas."""
from __future__ import annotations

import bisect
import random


def _weighted_sample(rng: random.Random, n: int, weights, k: int) -> list[int]:
    """k distinct indices of range(n) drawn by weight (Efraimidis-Spirakis), in index order."""
    keys = sorted(((rng.random() ** (1.0 / weights[i]), i) for i in range(n)), reverse=True)
    return sorted(i for _, i in keys[:k])


def _cumulative(weights) -> list[float]:
    out, acc = [], 0.0
    for w in weights:
        acc += w
        out.append(acc)
    return out


def _pick(rng: random.Random, cum: list[float]) -> int:
    """Index drawn by weight from cumulative weights (rng.choices without its overhead)."""
    return min(bisect.bisect_right(cum, rng.random() * cum[-1]), len(cum) - 1)


def _largest_remainder(total: int, weights: list[int]) -> list[int]:
    wsum = sum(weights)
    q = [total * w // wsum for w in weights]
    rest = total - sum(q)
    order = sorted(range(len(weights)), key=lambda i: (-(total * weights[i] % wsum), i))
    for i in order[:rest]:
        q[i] += 1
    return q
