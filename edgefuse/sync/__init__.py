"""Synchronizers: group timestamped messages from several inputs into sets.

Policies (see each module for the exact semantics): ``exact`` (:mod:`.exact`), ``approximate``
(ROS message_filters C++ ApproximateTime, :mod:`.approximate`), ``latest`` (zero-order hold,
:mod:`.latest`), ``imu_window`` (:mod:`.imu`), ``collector`` (deadline collector, :mod:`.collector`) and ``each``
(every message released at once on its own, :mod:`.each`); zero-order holds of slow inputs
(:mod:`.hold`).
Build one with :func:`make_synchronizer`; every one follows the :class:`Synchronizer` protocol and
accounts for every message in :class:`SyncStats`.
"""

from edgefuse.sync.approximate import ApproximateTimeSynchronizer, approximate_sync_batch
from edgefuse.sync.base import DROP_REASONS, InputStats, Synchronizer, SyncSet, SyncStats
from edgefuse.sync.collector import DeadlineCollector
from edgefuse.sync.each import EachSynchronizer
from edgefuse.sync.exact import ExactTimeSynchronizer, exact_sync_batch
from edgefuse.sync.factory import PARAMS, make_synchronizer, validate_params
from edgefuse.sync.hold import DEFAULT_HOLD_CAPACITY, HoldingSynchronizer, ZeroOrderHold
from edgefuse.sync.imu import ImuWindow, ImuWindowSynchronizer, imu_window
from edgefuse.sync.latest import LatestSynchronizer, latest_sync_batch
from edgefuse.sync.prepare import prepare

__all__ = [
    "DEFAULT_HOLD_CAPACITY",
    "DROP_REASONS",
    "PARAMS",
    "ApproximateTimeSynchronizer",
    "DeadlineCollector",
    "EachSynchronizer",
    "ExactTimeSynchronizer",
    "HoldingSynchronizer",
    "ImuWindow",
    "ImuWindowSynchronizer",
    "InputStats",
    "LatestSynchronizer",
    "SyncSet",
    "SyncStats",
    "Synchronizer",
    "ZeroOrderHold",
    "approximate_sync_batch",
    "exact_sync_batch",
    "imu_window",
    "latest_sync_batch",
    "make_synchronizer",
    "prepare",
    "validate_params",
]
