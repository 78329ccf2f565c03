"""What a block's height implies: the subsidy, the compact difficulty bits, and the first height of a
run, anchored on the halvings so that height and date agree."""
from __future__ import annotations

import datetime

# Halving heights and their (real, or for 2028 estimated) dates: the start height is anchored
# on them so that the subsidy follows both the height and the date of each block.
HALVINGS = ((0, datetime.date(2009, 1, 3)), (210000, datetime.date(2012, 11, 28)),
            (420000, datetime.date(2016, 7, 9)), (630000, datetime.date(2020, 5, 11)),
            (840000, datetime.date(2024, 4, 20)), (1050000, datetime.date(2028, 4, 15)))


def start_height(start_date: datetime.date, block_counts: list[int]) -> int:
    """A realistic first height, placed so that no halving height falls on the wrong date."""
    if start_date < HALVINGS[0][1]:
        raise ValueError(f"start date {start_date} is before the genesis block (2009-01-03)")
    total = sum(block_counts)
    end_date = start_date + datetime.timedelta(days=len(block_counts))
    e = max(i for i, (_, d) in enumerate(HALVINGS) if d <= start_date)
    h0, d0 = HALVINGS[e]
    nxt = HALVINGS[e + 1] if e + 1 < len(HALVINGS) else None
    if nxt is not None and nxt[1] < end_date:
        return nxt[0] - sum(block_counts[:(nxt[1] - start_date).days])
    # Estimate from the nearer halving, then keep the whole run inside its subsidy era.
    est = h0 + (start_date - d0).days * 144
    if nxt is not None:
        if (nxt[1] - start_date).days < (start_date - d0).days:
            est = nxt[0] - (nxt[1] - start_date).days * 144
        est = min(est, nxt[0] - total)
    return max(est, h0 + 1)


def subsidy(height: int) -> int:
    return 5_000_000_000 >> (height // 210000) if height < 64 * 210000 else 0


_BITS_BY_HALVING_ERA = ("1d00ffff", "181bc330", "17148edf", "17034219", "1702f128", "17020000")


def _bits(height: int) -> str:
    # Compact difficulty: fixed per 2016-block retarget period, plausible for its era.
    era = _BITS_BY_HALVING_ERA[min(height // 210000, len(_BITS_BY_HALVING_ERA) - 1)]
    if era == "1d00ffff":
        return era
    mant = int(era[2:], 16)
    period = height // 2016
    mant = max(0x010000, min(0x7FFFFF, mant + ((period * 2654435761) % 0x8000) - 0x4000))
    return era[:2] + "%06x" % mant
