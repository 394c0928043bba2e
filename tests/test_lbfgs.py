"""Batched L-BFGS: each row is an independent problem, solved as scipy's L-BFGS-B solves it alone."""

import numpy as np
import pytest
import scipy.optimize

from apftools import lbfgs


def rosenbrock(x, rows=None):
    """scipy's Rosenbrock function and gradient, one problem per row."""
    return (np.array([scipy.optimize.rosen(row) for row in x]),
            np.array([scipy.optimize.rosen_der(row) for row in x]))


def test_every_row_reaches_its_own_minimum():
    rng = np.random.default_rng(0)
    starts = rng.uniform(-2.0, 2.0, (6, 4))
    result = lbfgs.minimize(rosenbrock, starts, max_iter=500, gtol=1e-8, ftol=0.0)
    np.testing.assert_allclose(result.x, 1.0, atol=1e-5)
    np.testing.assert_allclose(result.fun, 0.0, atol=1e-10)
    # the iterations are each row's own: the same start alone takes the same path
    for row in (0, 3):
        alone = lbfgs.minimize(rosenbrock, starts[row:row + 1], max_iter=500, gtol=1e-8, ftol=0.0)
        np.testing.assert_array_equal(alone.x[0], result.x[row])
        assert alone.nit[0] == result.nit[row]
    assert result.evaluations < result.nit.sum()  # one evaluation serves every running row


def test_rows_stop_by_their_own_tests_and_are_not_evaluated_again():
    calls = []

    def quadratic(x, rows):  # row r: (x - r)^2 scaled by 10^r, so rows converge at different iterations
        calls.append(np.array(rows))
        scale = 10.0 ** rows[:, None]
        return np.sum(scale * (x - rows[:, None]) ** 2, axis=1), 2 * scale * (x - rows[:, None])

    result = lbfgs.minimize(quadratic, np.zeros((3, 2)), max_iter=50)
    np.testing.assert_allclose(result.x, [[0, 0], [1, 1], [2, 2]], atol=1e-6)
    assert result.nit[0] == 0  # already at its minimum: a zero gradient, no step
    assert all(0 not in rows for rows in calls[1:])  # evaluated once, at the start


def test_the_lower_bound_holds_and_the_bounded_optimum_is_found():
    def bowl(x, rows=None):  # minimum at (1, -3); the last variable bounded below by -1
        target = np.array([1.0, -3.0])
        return np.sum((x - target) ** 2, axis=1), 2 * (x - target)

    result = lbfgs.minimize(bowl, np.array([[0.0, 0.0], [5.0, 4.0]]), max_iter=100, lower=-1.0)
    np.testing.assert_allclose(result.x, [[1.0, -1.0], [1.0, -1.0]], atol=1e-8)
    reference = scipy.optimize.minimize(lambda z: bowl(z[None])[0][0], [5.0, 4.0], jac=lambda z: bowl(z[None])[1][0],
                                        method="L-BFGS-B", bounds=[(None, None), (-1.0, None)])
    np.testing.assert_allclose(result.fun, reference.fun, atol=1e-12)


@pytest.mark.parametrize("history", [1, 3, 10])
def test_a_quadratic_is_solved_to_its_optimum_with_any_history(history):
    rng = np.random.default_rng(history)
    a = rng.standard_normal((8, 8))
    hessian = a @ a.T + 0.5 * np.eye(8)
    b = rng.standard_normal(8)

    def quadratic(x, rows=None):
        return 0.5 * np.einsum("bi,ij,bj->b", x, hessian, x) - x @ b, x @ hessian - b

    result = lbfgs.minimize(quadratic, rng.standard_normal((3, 8)), max_iter=1000, history=history,
                            gtol=1e-10, ftol=0.0)
    optimum = np.linalg.solve(hessian, b)
    # the values agree to rounding; x to the square root of it (a flat minimum, Armijo steps on values)
    np.testing.assert_allclose(result.fun, quadratic(optimum[None])[0][0], rtol=1e-12)
    np.testing.assert_allclose(result.x, np.tile(optimum, (3, 1)), rtol=1e-5, atol=1e-6)
