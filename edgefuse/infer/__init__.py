"""Inference: ONNX models with their cards on the best installed execution provider, and INT8 quantization.

- :mod:`edgefuse.infer.card`: the model card (YAML beside each ``.onnx``; format in ``models/CARD.md``).
- :mod:`edgefuse.infer.runtime`: :class:`ModelRuntime` (provider choice and fallback, threads, optimized-graph
  cache, warm-up, IO binding, input checks) and :func:`inspect_model` (file problems told apart).
- :mod:`edgefuse.infer.preprocess`: image / point cloud → tensor as the card declares (Numba kernels).
- :mod:`edgefuse.infer.quantize`: static INT8 (QDQ, per-channel weights) from calibration tensors, with an
  accuracy report and a tolerance gate (needs the ``quantize`` extra: ``onnx``).

The ``onnx_model`` stage (:mod:`edgefuse.stages.onnx_model`) runs a model in a pipeline; ``edgefuse quantize``
collects calibration tensors by replaying a bag through a pipeline (:mod:`edgefuse.calibrate_model`).
"""

from __future__ import annotations

from edgefuse.infer.card import CardInput, CardOutput, ModelCard, load_card
from edgefuse.infer.runtime import ModelRuntime, describe_model, inspect_model, resolve_providers

__all__ = ["CardInput", "CardOutput", "ModelCard", "ModelRuntime", "describe_model", "inspect_model",
           "load_card", "resolve_providers"]
