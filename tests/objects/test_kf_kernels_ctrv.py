"""The CTRV unscented prediction used by the tracker never raises: a covariance without a Cholesky
factor falls back to the linearised (EKF) prediction and is flagged by the return value."""

from __future__ import annotations

import numpy as np

from edgefuse.objects import _kf_kernels as kfk


def test_ukf_ctrv_predict_falls_back_instead_of_raising() -> None:
    x = np.array([1.0, 2.0, 0.3, 8.0, 0.2])
    P = np.diag([0.1, 0.1, 0.1, 4.0, 0.25])
    P[3, 3] = -1.0  # not positive semidefinite: no sigma points
    xe, Pe = x.copy(), P.copy()
    kfk._ekf_ctrv_predict(xe, Pe, 0.1, 1.0, 0.2)
    assert not kfk._ukf_ctrv_predict(x, P, 0.1, 1.0, 0.2, 1.0, 2.0, 0.0)
    np.testing.assert_array_equal(x, xe)
    np.testing.assert_array_equal(P, Pe)
    # a healthy covariance still takes the unscented path
    x2, P2 = np.array([1.0, 2.0, 0.3, 8.0, 0.2]), np.diag([0.1, 0.1, 0.1, 4.0, 0.25])
    assert kfk._ukf_ctrv_predict(x2, P2, 0.1, 1.0, 0.2, 1.0, 2.0, 0.0)
    assert np.all(np.isfinite(P2))
