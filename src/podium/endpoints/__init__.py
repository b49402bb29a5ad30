"""Endpoint configuration: the domain that says what an endpoint's workers are. Imports no
fleet: the fleet (podium.fleet) places what this package describes.

    spec.py        Endpoint and EndpointSpec: settings (RunPod's wire names), validation
    gpu_ids.py     `gpuIds`: GPU indices, a minimum memory or type names (GpuRequest)
    templates.py   built-in and created templates -> the worker command line or image (Launch)
    containers.py  image references and the container engine's command lines
    volumes.py     network volumes and registry records; a volume's directory
    worker_env.py  the RUNPOD_* variables and worker URLs of PROTOCOL.md §2
    loadbalancer.py  LOAD_BALANCER endpoints: health, PORT, Host names, affinity, balancing
    v2.py          RunPod's REST v2 shapes of endpoints, templates, workers and releases

Pure: the records are re-exported here. What keeps them is the store's (store.base.Catalog,
store/records.py); `podium up`'s first-start records are gateway/quickstart.py's.
"""

from podium.endpoints.spec import (
    MAX_GPU_COUNT,
    SCALER_TYPES,
    WIRE_NAMES,
    Endpoint,
    EndpointSpec,
    new_endpoint_id,
)
from podium.endpoints.templates import BUILTIN_TEMPLATES, TEMPLATE_CUSTOM, TEMPLATE_SD15
from podium.endpoints.worker_env import PROTECTED_ENV

__all__ = [
    "BUILTIN_TEMPLATES",
    "MAX_GPU_COUNT",
    "PROTECTED_ENV",
    "SCALER_TYPES",
    "TEMPLATE_CUSTOM",
    "TEMPLATE_SD15",
    "WIRE_NAMES",
    "Endpoint",
    "EndpointSpec",
    "new_endpoint_id",
]
