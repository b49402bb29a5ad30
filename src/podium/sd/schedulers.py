"""Scheduler names -> diffusers scheduler classes (the table of docs/SD_WORKER.md).

Schedulers keep per-run state (timesteps, step index, multistep history), so every pipeline
call gets a fresh one from `make_scheduler`; one is never shared by two calls.
The accepted aliases live in schema.py; the keys here are their canonical names.
"""

from __future__ import annotations

import copy
import functools
import inspect
import json
from typing import Any, Protocol

from diffusers import (
    DDIMScheduler,
    DDPMScheduler,
    DPMSolverMultistepScheduler,
    DPMSolverSinglestepScheduler,
    EulerAncestralDiscreteScheduler,
    EulerDiscreteScheduler,
    HeunDiscreteScheduler,
    IPNDMScheduler,
    KDPM2AncestralDiscreteScheduler,
    KDPM2DiscreteScheduler,
    LMSDiscreteScheduler,
    PNDMScheduler,
    UniPCMultistepScheduler,
)
from diffusers.schedulers.scheduling_utils import SchedulerMixin

__all__ = ["SCHEDULERS", "make_scheduler"]


class _Scheduler(Protocol):
    """What `_prototype` needs of a scheduler class: diffusers' `ConfigMixin.from_config`.

    diffusers' type information shows its scheduler classes as placeholders, unrelated to
    SchedulerMixin and with an untyped `from_config`; at run time each is a SchedulerMixin
    and a ConfigMixin.
    """

    @classmethod
    def from_config(cls, config: dict[str, Any], **kwargs: Any) -> SchedulerMixin: ...


SCHEDULERS: dict[str, tuple[type[_Scheduler], dict[str, Any]]] = {
    "DDIM": (DDIMScheduler, {}),
    "DDPM": (DDPMScheduler, {}),
    "PNDM": (PNDMScheduler, {"skip_prk_steps": True}),
    "K-LMS": (LMSDiscreteScheduler, {}),
    "EULER-D": (EulerDiscreteScheduler, {}),
    "EULER-A": (EulerAncestralDiscreteScheduler, {}),
    "HEUN": (HeunDiscreteScheduler, {}),
    "KDPM2-D": (KDPM2DiscreteScheduler, {}),
    "KDPM2-A": (KDPM2AncestralDiscreteScheduler, {}),
    "DPM-M": (DPMSolverMultistepScheduler, {}),
    "DPM++ 2M Karras": (DPMSolverMultistepScheduler, {"use_karras_sigmas": True}),
    "DPM-S": (DPMSolverSinglestepScheduler, {}),
    "IPNDM": (IPNDMScheduler, {}),
    "UniPC": (UniPCMultistepScheduler, {}),
}


def make_scheduler(name: str, base_config: Any) -> SchedulerMixin:
    """A new scheduler of canonical `name`, configured from the model's own scheduler.

    Built once per (name, config) and deep-copied per call: a copy is independent, and
    some constructors are slow (KDPM2's computes 1000 timesteps in Python, ~0.3 s).
    """
    key = json.dumps(dict(base_config), sort_keys=True, default=str)
    return copy.deepcopy(_prototype(name, key))


@functools.lru_cache(maxsize=64)
def _prototype(name: str, config_json: str) -> SchedulerMixin:
    cls, overrides = SCHEDULERS[name]
    # Pass only what this class accepts: diffusers logs a warning for every foreign key
    # (IPNDM takes none of the betas).
    accepted = inspect.signature(cls.__init__).parameters
    config = {k: v for k, v in json.loads(config_json).items() if k in accepted}
    return cls.from_config(config, **overrides)
