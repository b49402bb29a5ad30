"""An endpoint's metrics over time (the console's Metrics tab, `GET /v2/{id}/metrics`).
Pure: no I/O. The store keeps the buckets (store.base.EndpointMetrics), the gateway
records into them (gateway/series.py).

**Buckets.** Every event is counted in a bucket of its endpoint and minute, and in the
coarser buckets that hold that minute: one tier per resolution, each kept as long as
the longest interval read from it (TIERS). A bucket is a map field -> integer:

    n               jobs submitted (the Requests chart's "total"; on a load-balancing
                    endpoint, requests answered)
    s:<STATUS>      jobs that ended with that status (COMPLETED, FAILED, CANCELLED, TIMED_OUT;
                    a load-balancing request: COMPLETED below 500, else FAILED)
    r               jobs retried (a /retry, or requeued after their worker was lost)
    d:<i> e:<i> c:<i>  delay, execution and cold-start times: a count per sketch bin i
    cs, cr          cold starts (workers the fleet started that became ready), restored
                    ones of them (from a snapshot)
    ws, wo, wf      webhook deliveries: sent, succeeded (2xx), failed (every attempt
                    failed, or the address was refused)
    w:<state>, w    worker-state samples: the most workers seen in each RunPod state (and
                    `w` = 1: a sample exists), the peak over the bucket's time

Counts merge by addition and samples by maximum, so the buckets of N gateways on one
store merge: each event is recorded by the one gateway that applied it (the store's
guarded transitions decide which), so nothing is counted twice; a worker-state sample
is the view of one gateway, and the peak of the views never adds two gateways' views up.

**The sketch.** Times go into logarithmic bins (DDSketch's, with fixed bounds): bin i
holds (MIN_S·γ^(i-1), MIN_S·γ^i] with γ = (1+α)/(1-α), α = RELATIVE_ERROR; a bin's
value is 2·MIN_S·γ^i/(γ+1), within α of every time in the bin. Bins add up, so any
merge of buckets gives the percentiles of all their times, each within α of the true
value at its rank (nearest rank: the ⌈q·n⌉-th shortest; times under MIN_S count as
MIN_S, over MAX_S as MAX_S). A bucket
holds at most BUCKET_FIELDS fields, whatever the jobs do: the size per endpoint is
bounded by TIERS alone (MAX_BUCKETS buckets).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from podium.clock import iso_time

__all__ = [
    "BINS",
    "BUCKET_FIELDS",
    "FUTURE_S",
    "INTERVALS",
    "MAX_BUCKETS",
    "RELATIVE_ERROR",
    "TIERS",
    "WORKER_STATES",
    "Delta",
    "Interval",
    "Recorder",
    "Tier",
    "bin_of",
    "bin_value",
    "bucket_starts",
    "interval",
    "kept_since",
    "placements",
    "quantile",
    "quantiles",
    "series",
]

RELATIVE_ERROR = 0.05  # α: each percentile within 5% of the true value at its rank
_GAMMA = (1 + RELATIVE_ERROR) / (1 - RELATIVE_ERROR)
_LOG_GAMMA = math.log(_GAMMA)
MIN_S = 0.001  # 1 ms
MAX_S = 7 * 86400.0  # a week
_TOP = math.ceil(math.log(MAX_S / MIN_S) / _LOG_GAMMA)  # the last bin under MAX_S
BINS = _TOP + 2  # bins 0 .. _TOP, and BINS-1 for MAX_S and over

HISTOGRAMS = {"d": "delayMs", "e": "executionMs", "c": "coldStartMs"}
FINAL_STATUSES = {
    "COMPLETED": "completed",
    "FAILED": "failed",
    "CANCELLED": "cancelled",
    "TIMED_OUT": "timedOut",
}
WORKER_STATES = ("running", "idle", "throttled", "initializing", "unhealthy")
WEBHOOK_FIELDS = {"delivered": ("ws", "wo"), "failed": ("ws", "wf"), "refused": ("ws", "wf")}
PERCENTILES = {"p70": 0.70, "p90": 0.90, "p98": 0.98}
# The samples' fields: merged by their maximum (every other field is a count: added).
PEAK_FIELDS = frozenset({"w", *(f"w:{s}" for s in WORKER_STATES)})
FUTURE_S = 3600  # a minute further ahead of the writer's clock than this is not stored
# Every field a bucket can hold: the counts, the bins, the samples.
BUCKET_FIELDS = (
    1 + len(FINAL_STATUSES) + 1 + len(HISTOGRAMS) * BINS + 2 + 3 + len(WORKER_STATES) + 1
)


@dataclass(frozen=True, slots=True)
class Tier:
    width_s: int  # a bucket's span
    keep_s: int  # how long a bucket is kept after it ends


TIERS = (
    Tier(60, 6 * 3600 + 120),  # the last hour, the last 6 hours
    Tier(600, 86400 + 1200),  # the last day
    Tier(3600, 7 * 86400 + 7200),  # the last week
)
MAX_BUCKETS = sum(t.keep_s // t.width_s + 2 for t in TIERS)  # per endpoint, at most


@dataclass(frozen=True, slots=True)
class Interval:
    name: str
    span_s: int  # how far back it reads
    width_s: int  # the tier it reads
    step_s: int  # a point of its series (a multiple of width_s)

    @property
    def points(self) -> int:
        return self.span_s // self.step_s

    def window(self, now: float) -> tuple[int, int]:
        """[start, end) of the series at `now`: the current (partial) step is the last."""
        end = (int(now) // self.step_s + 1) * self.step_s
        return end - self.span_s, end


INTERVALS = {
    i.name: i
    for i in (
        Interval("1h", 3600, 60, 60),
        Interval("6h", 6 * 3600, 60, 300),
        Interval("1d", 86400, 600, 600),
        Interval("1w", 7 * 86400, 3600, 3600),
    )
}


def interval(name: str) -> Interval:
    """The interval named (ValueError, naming the choices, for any other)."""
    try:
        return INTERVALS[name]
    except KeyError:
        raise ValueError(
            f"interval must be one of {', '.join(INTERVALS)}, got {name[:40]!r}"
        ) from None


# --- the sketch --------------------------------------------------------------------------


def bin_of(seconds: float) -> int:
    """The bin of a time (NaN and negatives count as 0 s)."""
    if not seconds > MIN_S:  # also NaN
        return 0
    if seconds >= MAX_S:
        return BINS - 1
    return min(_TOP, max(0, math.ceil(math.log(seconds / MIN_S) / _LOG_GAMMA)))


def bin_value(i: int) -> float:
    """The value a bin stands for, seconds."""
    if i <= 0:
        return MIN_S
    if i >= BINS - 1:
        return MAX_S
    return 2 * MIN_S * _GAMMA**i / (_GAMMA + 1)


def quantiles(bins: Mapping[int, int], qs: Iterable[float]) -> dict[float, float | None]:
    """The q-quantiles (seconds) of the times counted in `bins` (bin -> count), by nearest
    rank: for each q the value of the bin holding the ⌈q·n⌉-th shortest time (q of the
    times are at most it), all in one walk of the sorted bins; None when there are none."""
    out: dict[float, float | None] = dict.fromkeys(qs)
    n = sum(c for c in bins.values() if c > 0)
    if n == 0:
        return out
    wanted = sorted((max(0, math.ceil(q * n) - 1), q) for q in out)  # 0-based ranks
    seen = 0
    for i in sorted(bins):
        if bins[i] <= 0:
            continue
        seen += bins[i]
        while wanted and seen > wanted[0][0]:
            out[wanted.pop(0)[1]] = bin_value(i)
        if not wanted:
            break
    return out


def quantile(bins: Mapping[int, int], q: float) -> float | None:
    """One q-quantile (seconds) of `bins`, as `quantiles` gives it."""
    return quantiles(bins, (q,))[q]


# --- recording -------------------------------------------------------------------------


@dataclass(slots=True)
class Delta:
    """What to add to one endpoint's minute: counts (`add`, summed) and worker-state
    samples (`peak`, the maximum kept). The store writes it into every tier."""

    endpoint_id: str
    minute: int  # the minute's start, unix seconds
    add: dict[str, int] = field(default_factory=dict)
    peak: dict[str, int] = field(default_factory=dict)


class Recorder:
    """Events as they happen, kept in memory until the next `drain` (the gateway writes
    them to the store every few seconds). At most `max_minutes` (endpoint, minute)
    entries are held: while the store cannot take them, the oldest go first (at most
    2,000 × BUCKET_FIELDS counters, ~1.3 million, however hostile the times)."""

    def __init__(self, max_minutes: int = 2_000) -> None:
        self._pending: dict[tuple[str, int], Delta] = {}
        self._max = max_minutes
        self.dropped = 0  # entries dropped to stay within max_minutes

    def _delta(self, endpoint_id: str, at: float) -> Delta:
        minute = int(at) // 60 * 60 if math.isfinite(at) else 0  # 0: too old to store
        key = (endpoint_id, minute)
        delta = self._pending.get(key)
        if delta is None:
            if len(self._pending) >= self._max:
                oldest = min(self._pending, key=lambda k: k[1])
                del self._pending[oldest]
                self.dropped += 1
            delta = self._pending[key] = Delta(endpoint_id, minute)
        return delta

    def count(self, endpoint_id: str, at: float, name: str, n: int = 1) -> None:
        delta = self._delta(endpoint_id, at)
        delta.add[name] = delta.add.get(name, 0) + n

    def observe(self, endpoint_id: str, at: float, histogram: str, seconds: float) -> None:
        """One time into a sketch: `histogram` is d (delay), e (execution), c (cold start)."""
        self.count(endpoint_id, at, f"{histogram}:{bin_of(seconds)}")

    def submitted(self, endpoint_id: str, at: float) -> None:
        self.count(endpoint_id, at, "n")

    def ended(self, endpoint_id: str, at: float, status: str) -> None:
        if status in FINAL_STATUSES:
            self.count(endpoint_id, at, f"s:{status}")

    def retried(self, endpoint_id: str, at: float) -> None:
        self.count(endpoint_id, at, "r")

    def cold_start(self, endpoint_id: str, at: float, seconds: float, restored: bool) -> None:
        self.count(endpoint_id, at, "cs")
        if restored:
            self.count(endpoint_id, at, "cr")
        self.observe(endpoint_id, at, "c", seconds)

    def webhook(self, endpoint_id: str, at: float, outcome: str) -> None:
        for name in WEBHOOK_FIELDS.get(outcome, ()):
            self.count(endpoint_id, at, name)

    def workers(self, endpoint_id: str, at: float, states: Mapping[str, int]) -> None:
        """A sample of the endpoint's workers by RunPod state."""
        delta = self._delta(endpoint_id, at)
        sample = {f"w:{state}": int(states.get(state, 0)) for state in WORKER_STATES}
        delta.peak = merge((delta.peak, {"w": 1, **sample}))

    def drain(self) -> list[Delta]:
        out = list(self._pending.values())
        self._pending = {}
        return out

    def put_back(self, deltas: Iterable[Delta]) -> None:
        """Deltas a write failed to store: merged back, to go with the next drain."""
        for d in deltas:
            delta = self._delta(d.endpoint_id, d.minute)
            delta.add, delta.peak = merge((delta.add, d.add)), merge((delta.peak, d.peak))

    def __len__(self) -> int:
        return len(self._pending)


def kept_since(width_s: int, now: float) -> int:
    """The first bucket start the tier of `width_s` still keeps at `now` (reads leave
    older buckets out, whether or not the store has dropped them yet)."""
    tier = next(t for t in TIERS if t.width_s == width_s)
    return int(now) - tier.keep_s - tier.width_s + 1


def readable(width_s: int, start: int, end: int, now: float) -> tuple[int, int]:
    """[start, end) of a read of the tier of `width_s` at `now`, cut to what the tier
    keeps and to what can be stored (nothing more than FUTURE_S ahead)."""
    return max(start, kept_since(width_s, now)), min(end, int(now) + FUTURE_S + width_s)


def bucket_starts(width_s: int, start: int, end: int) -> range:
    """The starts of the tier's buckets in [start, end)."""
    return range(-(-start // width_s) * width_s, end, width_s)


def placements(minute: int, now: float) -> list[tuple[Tier, int, float]]:
    """Where a delta of `minute` goes at `now`: the bucket of each tier that holds it and
    still keeps it, as (tier, bucket start, seconds it is kept from now). A minute more
    than FUTURE_S ahead goes nowhere (a clock gone wrong must not pin buckets for ever)."""
    if minute > now + FUTURE_S:
        return []
    out = []
    for t in TIERS:
        start = minute // t.width_s * t.width_s
        left = start + t.width_s + t.keep_s - now
        if left > 0:
            out.append((t, start, left))
    return out


def merge(buckets: Iterable[Mapping[str, int]]) -> dict[str, int]:
    """Buckets as one: counts added, samples' peaks kept."""
    out: dict[str, int] = {}
    for bucket in buckets:
        for name, n in bucket.items():
            if name in PEAK_FIELDS:
                out[name] = max(out.get(name, 0), n)
            else:
                out[name] = out.get(name, 0) + n
    return out


# --- reading --------------------------------------------------------------------------


def _sketches(bucket: Mapping[str, int]) -> dict[str, dict[int, int]]:
    """The bucket's bins of each sketch (d, e, c), read in one pass over its fields."""
    out: dict[str, dict[int, int]] = {h: {} for h in HISTOGRAMS}
    for name, n in bucket.items():
        if len(name) > 2 and name[1] == ":" and name[0] in out:
            try:
                out[name[0]][int(name[2:])] = n
            except ValueError:
                continue
    return out


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 1)


def _percentiles(bins: Mapping[int, int]) -> dict[str, float | None]:
    """P70, P90, P98 (ms)."""
    found = quantiles(bins, PERCENTILES.values())
    return {name: _ms(found[q]) for name, q in PERCENTILES.items()}


def _counts(bucket: Mapping[str, int]) -> dict[str, Any]:
    return {
        "requests": {
            "total": bucket.get("n", 0),
            **{key: bucket.get(f"s:{s}", 0) for s, key in FINAL_STATUSES.items()},
            "retried": bucket.get("r", 0),
        },
        "coldStarts": {"total": bucket.get("cs", 0), "restored": bucket.get("cr", 0)},
        "webhooks": {
            "sent": bucket.get("ws", 0),
            "succeeded": bucket.get("wo", 0),
            "failed": bucket.get("wf", 0),
        },
    }


def series(
    endpoint_id: str,
    iv: Interval,
    now: float,
    buckets: Mapping[int, Mapping[str, int]],
) -> dict[str, Any]:
    """The route's answer: one point per step of the interval ending at `now`, from the
    buckets of its tier (bucket start -> fields) that fall in its window."""
    start, end = iv.window(now)
    steps: list[list[Mapping[str, int]]] = [[] for _ in range(iv.points)]
    for at, bucket in buckets.items():
        if start <= at < end:
            steps[(at - start) // iv.step_s].append(bucket)
    points = [merge(s) for s in steps]
    out: dict[str, Any] = {
        "endpointId": endpoint_id,
        "interval": iv.name,
        "stepSeconds": iv.step_s,
        "from": iso_time(start),
        "to": iso_time(end),
        "time": [start + i * iv.step_s for i in range(iv.points)],
    }
    counted = [_counts(p) for p in points]
    for group in ("requests", "coldStarts", "webhooks"):
        out[group] = {key: [c[group][key] for c in counted] for key in counted[0][group]}
    sketches = [_sketches(p) for p in points]
    for histogram, name in HISTOGRAMS.items():
        per = [_percentiles(sk[histogram]) for sk in sketches]
        out[name] = {key: [p[key] for p in per] for key in PERCENTILES}
    out["workers"] = {
        state: [p.get(f"w:{state}", 0) if p.get("w") else None for p in points]
        for state in WORKER_STATES
    }
    whole = merge(points)
    totals = _counts(whole)
    whole_sketches = _sketches(whole)
    for histogram, name in HISTOGRAMS.items():
        totals[name] = _percentiles(whole_sketches[histogram])
    out["totals"] = totals
    out["relativeError"] = RELATIVE_ERROR
    return out
