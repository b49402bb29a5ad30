"""Job stores: one contract (base.JobStore), one module per backend."""

from podium.store.base import FinishResult, JobStore, StoreCounts, open_store

__all__ = ["FinishResult", "JobStore", "StoreCounts", "open_store"]
