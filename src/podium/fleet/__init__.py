"""Endpoints' worker processes: on this machine (the embedded default) or on a Ray cluster.

    scaling.py     the scaling policy: how many workers to start, which idle ones to stop (pure)
    gpus.py        GPU discovery (injectable input) and assignment (pure)
    templates.py   built-in and created templates -> the worker command line (pure)
    catalog.py     created templates, kept through the store's settings
    view.py        FleetView: the supervisor's narrow interface to a gateway, and the
                   in-process implementation over the store
    supervisor.py  the one controller loop: starts, watches, drains, restarts and adopts
                   workers through a backend
    backend.py     the fleet interface: Backend, Slot, Placement, Adopted
    local.py       the local backend (process.py: one worker process, its own group)
    raycluster.py  the Ray backend (imports ray): named detached actors (rayslot.py)
    status.py      worker states as the supervisor reports them (for /health, /v1/...)
    settings.py    the supervisor's knobs (PODIUM_SUPERVISOR*, PODIUM_GPUS, PODIUM_FLEET...)
    logs.py        per-worker log files and reading their tails
    quickstart.py  `podium up`'s default sd15 endpoint and its client key

Submodules are imported directly; this package imports nothing on its own.
"""
