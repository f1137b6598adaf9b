"""The 15-state filter front end shared by :class:`~edgefuse.estimation.ekf.Ekf` and
:class:`~edgefuse.estimation.ukf.Ukf`: sensors, frames from the rig, counters, history, outputs.

Two ways to feed it, one kernel:

- streaming: :meth:`StateEstimator.add` (or ``add_imu`` / ``add_odometry`` / ``add_navsat``) per
  message, in arrival order — what the pipeline stage does;
- batch: :meth:`StateEstimator.run` over pre-decoded arrays (:class:`~edgefuse.estimation.sensors.Rows`),
  rows in arrival order — what the benchmark and offline tools do.  Both give the same result.

Rejected measurements never touch the state; each is counted per sensor and reason
(:attr:`StateEstimator.rejected`).  Out-of-order rows within ``history_length_s`` are inserted and the
later rows replayed (:attr:`StateEstimator.replayed`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from edgefuse.errors import CalibrationError, ConfigError, MessageError
from edgefuse.estimation import _kernels as kern
from edgefuse.estimation.navsat import Datum
from edgefuse.estimation.sensors import (
    PARTS,
    FixArrays,
    ImuArrays,
    OdomArrays,
    Rows,
    SensorMemory,
    SensorSpec,
    gnss_rows,
    imu_rows,
    odom_rows,
    quat_from_rpy,
)
from edgefuse.estimation.state import KERNEL_REASONS, N_STATE, PRE_REASONS, REASONS, parse_matrix
from edgefuse.msgs.types import ImuData, NavSatFixData, OdometryData

F64 = npt.NDArray[np.float64]

#: robot_localization's default process noise diagonal (state order).
DEFAULT_PROCESS_NOISE = (0.05, 0.05, 0.06, 0.03, 0.03, 0.06, 0.025, 0.025, 0.04, 0.01, 0.01, 0.02, 0.01, 0.01,
                         0.015)


def _strip(frame: str) -> str:
    return frame.lstrip("/")


class StateEstimator:
    """15-state filter over IMU, odometry and GNSS (see the package docstring for the model).

    Args:
        sensors: one :class:`SensorSpec` per input (unique names).
        rig: :class:`edgefuse.rig.Rig` for sensor-to-base transforms (None: every sensor frame must be
            the base frame, and odometry frames the world frame).
        base_frame / world_frame: the robot body frame and the frame of the estimated pose.
        process_noise: 15×15 (or 15 diagonal values) continuous-time noise, used as ``Q·dt``.
        initial_covariance: 15×15 (or diagonal); initial_state: 15 values (default 0).
        two_d_mode: hold z, roll, pitch and their rates and az at 0.
        history_length_s: keep this much history for out-of-order measurements (0: reject them).
        history_size: most rows held in the history.
        max_future_s: a row more than this ahead of the filter time is rejected as ``future`` (0: off);
            after ``future_reset_count`` such rows in a row the jump is accepted (``time_jumps``).
    """

    mode = 0
    kind = "ekf"

    def __init__(
        self,
        sensors: Sequence[SensorSpec],
        *,
        rig: Any = None,
        base_frame: str = "base_link",
        world_frame: str = "odom",
        process_noise: Any = DEFAULT_PROCESS_NOISE,
        initial_covariance: Any = (1e-9,) * N_STATE,
        initial_state: Any = None,
        two_d_mode: bool = False,
        history_length_s: float = 1.0,
        history_size: int = 512,
        max_future_s: float = 5.0,
        future_reset_count: int = 10,
        alpha: float = 1e-3,
        beta: float = 2.0,
        kappa: float = 0.0,
    ) -> None:
        names = [s.name for s in sensors]
        if len(set(names)) != len(names):
            raise ConfigError(f"sensor names must be unique, got {names}")
        if not sensors:
            raise ConfigError("a filter needs at least one sensor")
        if history_size < 2 or history_length_s < 0 or max_future_s < 0 or future_reset_count < 1:
            raise ConfigError("history_size >= 2, history_length_s >= 0, max_future_s >= 0 and "
                              "future_reset_count >= 1 are required")
        if not (alpha > 0 and math.isfinite(beta) and math.isfinite(kappa)):
            raise ConfigError(f"UKF parameters need alpha > 0 and finite beta, kappa (got {alpha}, {beta}, {kappa})")
        self.sensors = list(sensors)
        self._index = {s.name: i for i, s in enumerate(self.sensors)}
        self.rig = rig
        self.base_frame = base_frame
        self.world_frame = world_frame
        self.Q = parse_matrix(process_noise, "process_noise_covariance")
        self.P0 = parse_matrix(initial_covariance, "initial_estimate_covariance")
        x0 = np.zeros(N_STATE) if initial_state is None else np.asarray(initial_state, dtype=np.float64)
        if x0.shape != (N_STATE,) or not np.all(np.isfinite(x0)):
            raise ConfigError(f"initial_state must be 15 finite values, got {initial_state!r}")
        self.x0 = x0
        self.cfg = np.zeros(kern.G_LEN)
        self.cfg[kern.G_TWO_D] = 1.0 if two_d_mode else 0.0
        self.cfg[kern.G_HISTORY_NS] = history_length_s * 1e9
        self.cfg[kern.G_FUTURE_NS] = max_future_s * 1e9
        self.cfg[kern.G_FUTURE_RESET] = float(future_reset_count)
        self.cfg[kern.G_MODE] = float(self.mode)
        self.cfg[kern.G_ALPHA], self.cfg[kern.G_BETA], self.cfg[kern.G_KAPPA] = alpha, beta, kappa
        self._history_size = int(history_size)
        n_slots = PARTS * len(self.sensors)
        self.slot_par = np.zeros((n_slots, 4))
        self._frames: dict[tuple[str, str], F64 | None] = {}
        for i, s in enumerate(self.sensors):
            self.slot_par[i * PARTS + 2, 0] = s.gravity_m_s2
        self.reset()

    # -- state -----------------------------------------------------------------------------------
    def reset(self) -> None:
        """Back to the initial state; counters, history, datum and sensor memories cleared."""
        H = self._history_size
        self.x = self.x0.copy()
        self.P = self.P0.copy()
        self.ctr = np.zeros(kern.C_LEN, np.int64)
        self.slot_last = np.full(self.slot_par.shape[0], kern.INT64_MIN, np.int64)
        self.navsat = np.zeros(kern.NAV_LEN)
        self.h_t = np.zeros(H, np.int64)
        self.h_slot = np.zeros(H, np.int64)
        self.h_kind = np.zeros(H, np.int64)
        self.h_z = np.zeros((H, 6))
        self.h_idx = np.zeros((H, 6), np.int64)
        self.h_m = np.zeros(H, np.int64)
        self.h_R = np.zeros((H, 6, 6))
        self.h_thresh = np.zeros(H)
        self.h_aux = np.zeros(H)
        self.h_x = np.zeros((H, N_STATE))
        self.h_P = np.zeros((H, N_STATE, N_STATE))
        self.memory = {s.name: SensorMemory() for s in self.sensors}
        self.datum: Datum | None = None
        self.heading_rad = math.nan
        self.heading_stamp_ns: int | None = None
        self.rejected: dict[str, dict[str, int]] = {s.name: {} for s in self.sensors}
        self.accepted: dict[str, int] = {s.name: 0 for s in self.sensors}
        self._empty_out = (np.zeros(0, np.int64), np.zeros((0, N_STATE)), np.zeros((0, N_STATE)))

    @property
    def stamp_ns(self) -> int | None:
        """Filter time [ns] (None before the first measurement)."""
        return int(self.ctr[kern.C_T]) if self.ctr[kern.C_INIT] else None

    @property
    def state(self) -> F64:
        """A copy of the 15-state (see :mod:`edgefuse.estimation.state`)."""
        return self.x.copy()

    @property
    def covariance(self) -> F64:
        """A copy of the 15×15 covariance."""
        return self.P.copy()

    @property
    def replayed(self) -> int:
        """Rows replayed because an older measurement was inserted into the history."""
        return int(self.ctr[kern.C_REPLAYED])

    @property
    def time_jumps(self) -> int:
        return int(self.ctr[kern.C_TIME_JUMPS])

    def rejection_totals(self) -> dict[str, int]:
        """Reason → count over every sensor."""
        out: dict[str, int] = {}
        for per in self.rejected.values():
            for k, v in per.items():
                out[k] = out.get(k, 0) + v
        return out

    def healthy(self) -> bool:
        """State and covariance finite, covariance symmetric positive semi-definite."""
        if not (np.all(np.isfinite(self.x)) and np.all(np.isfinite(self.P))):
            return False
        return bool(np.linalg.eigvalsh(0.5 * (self.P + self.P.T)).min() > -1e-9)

    # -- frames ----------------------------------------------------------------------------------
    def _lookup(self, to_frame: str, from_frame: str) -> F64 | None:
        key = (to_frame, from_frame)
        if key not in self._frames:
            T: F64 | None
            if to_frame == from_frame:
                T = np.eye(4)
            elif self.rig is None:
                T = None
            else:
                try:
                    T = np.asarray(self.rig.transform(to_frame, from_frame).matrix, dtype=np.float64)
                except (CalibrationError, KeyError, ValueError):
                    T = None
            self._frames[key] = T
        return self._frames[key]

    def _frame(self, spec: SensorSpec, msg_frame: str) -> str:
        return _strip(spec.frame_id if spec.frame_id else msg_frame)

    # -- measurement rows ------------------------------------------------------------------------
    def rows_imu(self, name: str, arr: ImuArrays) -> Rows:
        spec = self.sensors[self._index[name]]
        T = self._lookup(self.base_frame, self._frame(spec, arr.frame_id))
        Rbi = None if T is None else T[:3, :3]
        mem = self.memory[name]
        rows = imu_rows(spec, self._index[name], arr, Rbi, mem)
        if mem.last_yaw_t is not None:
            self.heading_rad = mem.last_yaw
            self.heading_stamp_ns = mem.last_yaw_t
        return rows

    def rows_odometry(self, name: str, arr: OdomArrays) -> Rows:
        spec = self.sensors[self._index[name]]
        T_wf = self._lookup(self.world_frame, _strip(arr.frame_id))
        T_cb = self._lookup(self._frame(spec, arr.child_frame_id), self.base_frame)
        return odom_rows(spec, self._index[name], arr, T_wf, T_cb, self.memory[name])

    def rows_navsat(self, name: str, arr: FixArrays, heading_rad: float | None = None) -> Rows:
        """GNSS rows; the antenna lever arm comes from the rig (base → the fix's frame).

        ``heading_rad``: the IMU-derived world yaw of the base at the datum (default: the latest IMU
        yaw this filter has seen); the navsat sensor's declination and yaw offset are added to it.
        """
        i = self._index[name]
        spec = self.sensors[i]
        T = self._lookup(self.base_frame, self._frame(spec, arr.frame_id))
        if T is not None:
            self.slot_par[i * PARTS, 0:3] = T[:3, 3]
        if spec.use_odometry_yaw:
            heading = math.nan
        else:
            h = self.heading_rad if heading_rad is None else heading_rad
            heading = h + spec.magnetic_declination_rad + spec.yaw_offset_rad if math.isfinite(h) else math.nan
        rows, self.datum = gnss_rows(spec, i, arr, self.datum, heading)
        if T is None:
            rows.pre[rows.pre < 0] = PRE_REASONS.index("unknown_frame")
        return rows

    # -- processing ------------------------------------------------------------------------------
    def warmup(self) -> None:
        """Compile the kernel (on a scratch copy of the state), so the first message pays no JIT."""
        rows = Rows.empty(3)
        rows.t[:] = [1, 2, 1]
        rows.m[:] = 1
        rows.R[:, 0, 0] = 1.0
        rows.slot[:] = [0, 0, 1]
        rows.kind[:] = [kern.KIND_DIRECT, kern.KIND_GNSS, kern.KIND_ACCEL_GRAVITY]
        rows.idx[:, 0] = [0, 0, 12]
        saved = (self.x.copy(), self.P.copy(), self.ctr.copy(), self.slot_last.copy(), self.navsat.copy())
        self._kernel(rows, keep=True)
        self.x, self.P, self.ctr, self.slot_last, self.navsat = saved

    def _kernel(self, rows: Rows, keep: bool) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], F64, F64]:
        n = len(rows)
        status = np.zeros(n, np.int64)
        if keep:
            out_t, out_x, out_p = np.zeros(n, np.int64), np.zeros((n, N_STATE)), np.zeros((n, N_STATE))
        else:
            out_t, out_x, out_p = self._empty_out
        kern._run_rows(rows.t, rows.slot, rows.kind, rows.z, rows.idx, rows.m, rows.R, rows.thresh, rows.aux,
                    self.x, self.P, self.Q, self.cfg, self.ctr, self.slot_last, self.slot_par, self.navsat,
                    self.h_t, self.h_slot, self.h_kind, self.h_z, self.h_idx, self.h_m, self.h_R, self.h_thresh,
                    self.h_aux, self.h_x, self.h_P, status, out_t, out_x, out_p)
        return status, out_t, out_x, out_p

    def run(self, rows: Rows, *, keep_states: bool = False) -> dict[str, Any]:
        """Process rows (arrival order); count rejections.  With ``keep_states`` the result holds
        ``t`` (N,), ``x`` (N, 15), ``p_diag`` (N, 15) after each row that went to the kernel."""
        go = rows.pre < 0
        krows = rows
        if not go.all():
            for code in set(rows.pre[~go].tolist()):
                self._count(rows.slot[rows.pre == code], PRE_REASONS[int(code)])
            krows = rows.sorted_by_arrival(np.flatnonzero(go))
        status, out_t, out_x, out_p = self._kernel(krows, keep_states)
        ok = status == kern.ST_OK
        self._count_ok(krows.slot[ok])
        if not ok.all():
            for code in set(status[~ok].tolist()):
                self._count(krows.slot[status == code], KERNEL_REASONS[int(code)])
        return {"status": status, "slot": krows.slot, "t": out_t, "x": out_x, "p_diag": out_p}

    def _count(self, slots: npt.NDArray[np.int64], reason: str) -> None:
        for s, c in _counts(slots // PARTS):
            per = self.rejected[self.sensors[s].name]
            per[reason] = per.get(reason, 0) + c

    def _count_ok(self, slots: npt.NDArray[np.int64]) -> None:
        for s, c in _counts(slots // PARTS):
            self.accepted[self.sensors[s].name] += c

    def add(self, name: str, payload: Any) -> npt.NDArray[np.int64]:
        """Feed one message to sensor ``name``; returns the kernel status of each of its rows."""
        if name not in self._index:
            raise ConfigError(f"unknown sensor {name!r}; known: {list(self._index)}")
        kind = self.sensors[self._index[name]].kind
        if kind == "imu" and isinstance(payload, ImuData):
            rows = self.rows_imu(name, ImuArrays.from_payloads([payload]))
        elif kind == "odom" and isinstance(payload, OdometryData):
            rows = self.rows_odometry(name, OdomArrays.from_payloads([payload]))
        elif kind == "gnss" and isinstance(payload, NavSatFixData):
            rows = self.rows_navsat(name, FixArrays.from_payloads([payload]))
        else:
            raise MessageError(f"sensor {name!r} ({kind}) cannot take {type(payload).__name__}")
        return np.asarray(self.run(rows)["status"])

    def add_imu(self, name: str, msg: ImuData) -> npt.NDArray[np.int64]:
        return self.add(name, msg)

    def add_odometry(self, name: str, msg: OdometryData) -> npt.NDArray[np.int64]:
        return self.add(name, msg)

    def add_navsat(self, name: str, msg: NavSatFixData) -> npt.NDArray[np.int64]:
        return self.add(name, msg)

    # -- outputs ---------------------------------------------------------------------------------
    def odometry(self, stamp_ns: int | None = None) -> OdometryData:
        """The estimate as ``nav_msgs/Odometry``: pose in ``world_frame``, twist in ``base_frame``,
        6×6 covariances (x y z roll pitch yaw / vx vy vz vroll vpitch vyaw)."""
        x, P = self.x, self.P
        t = stamp_ns if stamp_ns is not None else (self.stamp_ns or 0)
        return OdometryData(
            stamp_ns=int(t), frame_id=self.world_frame, child_frame_id=self.base_frame,
            position=x[0:3].copy(), orientation=quat_from_rpy(x[3], x[4], x[5]),
            pose_covariance=P[0:6, 0:6].copy(), linear_velocity=x[6:9].copy(), angular_velocity=x[9:12].copy(),
            twist_covariance=P[6:12, 6:12].copy(),
        )

    def report(self) -> dict[str, Any]:
        """Counters as a JSON-ready dict."""
        return {"filter": self.kind, "stamp_ns": self.stamp_ns, "accepted": dict(self.accepted),
                "rejected": {k: dict(v) for k, v in self.rejected.items()},
                "rejected_total": self.rejection_totals(), "replayed": self.replayed,
                "time_jumps": self.time_jumps, "reasons": list(REASONS),
                "datum": None if self.datum is None else vars(self.datum)}


def _counts(values: npt.NDArray[np.int64]) -> list[tuple[int, int]]:
    if values.shape[0] <= 8:
        out: dict[int, int] = {}
        for v in values.tolist():
            out[v] = out.get(v, 0) + 1
        return list(out.items())
    u, c = np.unique(values, return_counts=True)
    return list(zip(u.tolist(), c.tolist(), strict=True))


def sensors_from_mapping(sensors: Mapping[str, Mapping[str, Any]]) -> list[SensorSpec]:
    """``{name: {kind: imu|odom|gnss, config: [...], ...}}`` → specs (YAML / stage parameters)."""
    out = []
    for name, d in sensors.items():
        if not isinstance(d, Mapping) or "kind" not in d:
            raise ConfigError(f"sensor '{name}' must be a mapping with 'kind' (imu, odom or gnss)")
        rest = {k: v for k, v in d.items() if k != "kind"}
        out.append(SensorSpec.from_dict(str(name), str(d["kind"]), rest))
    return out
