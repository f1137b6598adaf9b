"""Object-level stages (edge types ``Detections2D``, ``Detections3D``, ``Tracks``, which
:mod:`edgefuse.objects.msgs` registers in :mod:`edgefuse.msgs.edges`).

- ``nms``: per-label NMS / Soft-NMS of one or two 2-D detection inputs.
- ``wbf``: weighted boxes fusion of up to three 2-D detection inputs (``wbf_3d`` for 3-D inputs).
- ``track``: multi-object tracker on 3-D detections (:mod:`edgefuse.objects.tracker`).

Bad input is dropped and counted, never fatal.  Each stage's ``report()`` (the runner puts it under
``stages.<name>.details`` in the replay report) gives::

    frames        sets processed
    empty_inputs  detection inputs that held no box (not an error: counted, processed as usual)
    boxes_in      boxes received, boxes_out: boxes published (track: tracks published)
    rejected      reason -> count, every known reason listed (0 when it never happened):
                  boxes: non_finite (NaN/inf coordinate, score or label), inverted (x2 < x1, y2 < y1 or
                  a negative 3-D size), zero_size, bad_covariance (track only);
                  frames (track only): out_of_order, from_future;
                  tracks (track only): diverged (filter stopped being finite), singular_innovation
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np

from edgefuse.errors import PipelineError
from edgefuse.objects import boxfusion as bf
from edgefuse.objects.tracker import MultiObjectTracker, TrackerConfig
from edgefuse.objects.types import DET2D_DTYPE, DET3D_DTYPE, Detections2D, Detections3D
from edgefuse.stages.base import Param, Stage, register_stage

_BOX_REASONS = ("non_finite", "inverted", "zero_size")
_TRACK_REASONS = (*_BOX_REASONS, "bad_covariance", "out_of_order", "from_future", "diverged",
                  "singular_innovation")


class _CountingStage(Stage):
    """Per-stage counters behind :meth:`report` (see the module docstring)."""

    reasons: ClassVar[tuple[str, ...]] = _BOX_REASONS

    def __init__(self, name: str, params: Mapping[str, Any], rig: Any = None) -> None:
        super().__init__(name, params, rig)
        self.rejected: Counter[str] = Counter()
        self._reset_counts()

    def _reset_counts(self) -> None:
        self.rejected.clear()
        self.rejected.update(dict.fromkeys(self.reasons, 0))
        self.frames = 0
        self.empty_inputs = 0
        self.boxes_in = 0
        self.boxes_out = 0

    def _count_inputs(self, dets: list[Any]) -> None:
        self.frames += 1
        for d in dets:
            self.boxes_in += len(d)
            self.empty_inputs += len(d) == 0

    def report(self) -> dict[str, Any]:
        """Frames, empty inputs, boxes in / out and rejected inputs per reason."""
        return {"frames": self.frames, "empty_inputs": self.empty_inputs, "boxes_in": self.boxes_in,
                "boxes_out": self.boxes_out, "rejected": dict(self.rejected)}


def _lists2d(dets: list[Detections2D]) -> tuple[list[Any], list[Any], list[Any]]:
    return ([d.xyxy() for d in dets], [np.asarray(d.boxes["score"]) for d in dets],
            [np.asarray(d.boxes["label"]) for d in dets])


def _to_2d(stamp_ns: int, frame_id: str, r: bf.FusionResult) -> Detections2D:
    out = np.zeros(r.boxes.shape[0], DET2D_DTYPE)
    for i, k in enumerate(("x1", "y1", "x2", "y2")):
        out[k] = r.boxes[:, i]
    out["score"] = r.scores if r.decayed_scores is None else r.decayed_scores
    out["label"] = r.labels.astype(np.int32)
    out["id"] = -1
    out["cov"] = np.nan
    return Detections2D(stamp_ns, frame_id, out)


@register_stage("nms")
class NmsStage(_CountingStage):
    """Per-label NMS (``method: hard``) or Soft-NMS (``linear`` / ``gaussian``) of 2-D detections."""

    inputs: ClassVar[dict[str, str]] = {"detections": "Detections2D", "detections_b?": "Detections2D"}
    outputs: ClassVar[dict[str, str]] = {"detections": "Detections2D"}
    params: ClassVar[dict[str, Param]] = {
        "method": Param(str, "hard", doc="hard | linear | gaussian"),
        "iou_thr": Param(float, 0.5),
        "sigma": Param(float, 0.5),
        "score_thr": Param(float, 0.001, doc="Soft-NMS: keep boxes whose decayed score > this"),
        "normalized": Param(bool, False, doc="coordinates in [0, 1] (clipped) instead of pixels"),
    }

    def __init__(self, name: str, params: Mapping[str, Any], rig: Any = None) -> None:
        super().__init__(name, params, rig)
        if self.p["method"] not in ("hard", "linear", "gaussian"):
            raise PipelineError(f"stage '{name}': method must be hard, linear or gaussian")

    def start(self) -> None:
        z = Detections2D(0, "", np.zeros(0, DET2D_DTYPE))
        one = Detections2D(0, "", np.array([(0.1, 0.1, 0.2, 0.2, 0.9, 0, -1, np.full((2, 2), np.nan))] * 2,
                                            DET2D_DTYPE))
        self.process({"detections": one, "detections_b": z}, 0)
        self._reset_counts()

    def process(self, inputs: Mapping[str, Any], stamp_ns: int) -> dict[str, Any]:
        dets = [d for d in (inputs.get("detections"), inputs.get("detections_b")) if d is not None]
        self._count_inputs(dets)
        b, s, lab = _lists2d(dets)
        clip = bool(self.p["normalized"])
        if self.p["method"] == "hard":
            r = bf.nms(b, s, lab, iou_thr=self.p["iou_thr"], clip=clip)
        else:
            r = bf.soft_nms(b, s, lab, method=self.p["method"], iou_thr=self.p["iou_thr"], sigma=self.p["sigma"],
                            thresh=self.p["score_thr"], clip=clip)
        self.rejected.update(r.rejected)
        self.boxes_out += r.boxes.shape[0]
        return {"detections": _to_2d(stamp_ns, dets[0].frame_id, r)}


@register_stage("wbf")
class WbfStage(_CountingStage):
    """Weighted boxes fusion of two or three 2-D detectors (ensemble_boxes-compatible arithmetic)."""

    inputs: ClassVar[dict[str, str]] = {"a": "Detections2D", "b?": "Detections2D", "c?": "Detections2D"}
    outputs: ClassVar[dict[str, str]] = {"detections": "Detections2D"}
    params: ClassVar[dict[str, Param]] = {
        "iou_thr": Param(float, 0.55),
        "skip_box_thr": Param(float, 0.0),
        "conf_type": Param(str, "avg"),
        "weights": Param(list, None, doc="one weight per input a, b, c"),
        "normalized": Param(bool, False, doc="coordinates in [0, 1] (clipped) instead of pixels"),
    }

    def __init__(self, name: str, params: Mapping[str, Any], rig: Any = None) -> None:
        super().__init__(name, params, rig)
        if self.p["conf_type"] not in ("avg", "max", "box_and_model_avg", "absent_model_aware_avg"):
            raise PipelineError(f"stage '{name}': unknown conf_type {self.p['conf_type']!r}")

    def start(self) -> None:
        one = Detections2D(0, "", np.array([(0.1, 0.1, 0.2, 0.2, 0.9, 0, -1, np.full((2, 2), np.nan))] * 2,
                                            DET2D_DTYPE))
        self.process({"a": one, "b": one, "c": one}, 0)
        self._reset_counts()

    def process(self, inputs: Mapping[str, Any], stamp_ns: int) -> dict[str, Any]:
        # absent optional inputs count as models with no boxes so weights keep their meaning
        self._count_inputs([d for d in (inputs.get(k) for k in ("a", "b", "c")) if d is not None])
        dets = [inputs.get(k) or Detections2D(stamp_ns, "", np.zeros(0, DET2D_DTYPE)) for k in ("a", "b", "c")]
        n = 3 if self.p["weights"] is None else len(self.p["weights"])
        b, s, lab = _lists2d(dets[:n])
        r = bf.weighted_boxes_fusion(b, s, lab, weights=self.p["weights"], iou_thr=self.p["iou_thr"],
                                     skip_box_thr=self.p["skip_box_thr"], conf_type=self.p["conf_type"],
                                     clip=bool(self.p["normalized"]))
        self.rejected.update(r.rejected)
        self.boxes_out += r.boxes.shape[0]
        return {"detections": _to_2d(stamp_ns, inputs["a"].frame_id, r)}


@register_stage("wbf_3d")
class Wbf3dStage(_CountingStage):
    """Yaw-aware weighted boxes fusion of two or three 3-D detectors (same frame)."""

    inputs: ClassVar[dict[str, str]] = {"a": "Detections3D", "b?": "Detections3D", "c?": "Detections3D"}
    outputs: ClassVar[dict[str, str]] = {"detections": "Detections3D"}
    params: ClassVar[dict[str, Param]] = {"iou_thr": Param(float, 0.3), "skip_box_thr": Param(float, 0.0)}

    def process(self, inputs: Mapping[str, Any], stamp_ns: int) -> dict[str, Any]:
        dets = [inputs[k] for k in ("a", "b", "c") if inputs.get(k) is not None]
        self._count_inputs(dets)
        r = bf.weighted_boxes_fusion_3d([d.array7() for d in dets], [d.boxes["score"] for d in dets],
                                        [d.boxes["label"] for d in dets], iou_thr=self.p["iou_thr"],
                                        skip_box_thr=self.p["skip_box_thr"])
        self.rejected.update(r.rejected)
        self.boxes_out += r.boxes.shape[0]
        out = np.zeros(r.boxes.shape[0], DET3D_DTYPE)
        for i, k in enumerate(("x", "y", "z", "l", "w", "h", "yaw")):
            out[k] = r.boxes[:, i]
        out["score"] = r.scores
        out["label"] = r.labels.astype(np.int32)
        out["id"] = -1
        out["cov"] = np.nan
        return {"detections": Detections3D(stamp_ns, dets[0].frame_id, out)}

    def start(self) -> None:
        one = Detections3D(0, "", np.array([(0, 0, 0, 4, 2, 1.5, 0.1, 0.9, 0, -1, np.full((4, 4), np.nan))] * 2,
                                            DET3D_DTYPE))
        self.process({"a": one, "b": one}, 0)
        self._reset_counts()


@register_stage("track")
class TrackStage(_CountingStage):
    """Multi-object tracking of 3-D detections; outputs confirmed (and coasting) tracks.

    ``report()`` adds ``tracks_alive`` (tracks held now, any status) and ``tracks_created``.
    """

    reasons: ClassVar[tuple[str, ...]] = _TRACK_REASONS

    inputs: ClassVar[dict[str, str]] = {"detections": "Detections3D"}
    outputs: ClassVar[dict[str, str]] = {"tracks": "Tracks"}
    params: ClassVar[dict[str, Param]] = {
        "motion": Param(str, "cv", doc="cv | ctrv"),
        "filter": Param(str, "kf", doc="kf (cv) | ekf | ukf (ctrv)"),
        "gate_chi2": Param(float, 13.8),
        "min_hits": Param(int, 3),
        "max_misses": Param(int, 3),
        "accel_std": Param(float, 2.0),
        "meas_std_m": Param(float, 0.5),
        "publish_coasting": Param(bool, True),
        "max_future_ms": Param(float, 100.0, doc="detections stamped later than the set stamp + this are rejected"),
    }

    def __init__(self, name: str, params: Mapping[str, Any], rig: Any = None) -> None:
        super().__init__(name, params, rig)
        p = self.p
        try:
            cfg = TrackerConfig(motion=p["motion"], filter=p["filter"], gate_chi2=p["gate_chi2"],
                                min_hits=p["min_hits"], max_misses=p["max_misses"], accel_std=p["accel_std"],
                                meas_std_m=p["meas_std_m"], publish_coasting=p["publish_coasting"],
                                max_future_ns=int(p["max_future_ms"] * 1e6))
            self.tracker = MultiObjectTracker(cfg)
        except Exception as exc:  # AssociationError from the config check
            raise PipelineError(f"stage '{name}': {exc}") from None
        self.rejected = self.tracker.rejected  # one counter: the tracker counts, the report shows it
        self._reset_counts()

    def start(self) -> None:
        self.tracker.warmup()

    def process(self, inputs: Mapping[str, Any], stamp_ns: int) -> dict[str, Any]:
        dets = inputs["detections"]
        self._count_inputs([dets])
        tracks = self.tracker.update(dets, now_ns=stamp_ns)
        self.boxes_out += len(tracks)
        return {"tracks": tracks}

    def report(self) -> dict[str, Any]:
        """As the other object stages, plus ``tracks_alive`` and ``tracks_created``."""
        rep = super().report()
        rep.update(tracks_alive=len(self.tracker.tracks), tracks_created=self.tracker._next_id - 1)
        return rep


__all__ = ["NmsStage", "TrackStage", "Wbf3dStage", "WbfStage"]
