"""The Stable Diffusion v1.5 handler (txt2img, img2img, inpainting), RunPod SD v1 compatible.

    schema.py      the input contract: validate(input) -> SDRequest, json_schema()   (pure)
    batching.py    which requests can share one pipeline call: group_key, plan       (pure)
    images.py      init_image / mask decoding: base64, data: URLs, guarded http(s)
    schedulers.py  scheduler names -> diffusers classes, a fresh one per call
    models.py      model loading: tiny, sd15-random, HF repo, folder, single file, auto
    generate.py    one batched pipeline call for a group of compatible jobs
    handler.py     SDHandler (a podium.worker.api.BatchHandler) and build()

Importing this package imports nothing heavy: torch and diffusers load with models.py,
generate.py and handler.py only, so the gateway can use schema.py alone.
"""

__all__: list[str] = []
