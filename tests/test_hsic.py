"""Property tests for unmask.losses.hsic, against float64 references written from the formulas."""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import math
import statistics

import pytest
import torch

from unmask.errors import UnmaskError
from unmask.losses.hsic import hsic, median_sigma

ESTIMATORS = ("biased", "unbiased", "paper")


# -- float64 references, explicit loops -------------------------------------------------------------
def _unit(u):
    return [[v / math.sqrt(sum(w * w for w in r)) for v in r] for r in u]


def _k(a, b, kernel, sigma):
    if kernel == "linear":
        return sum(p * q for p, q in zip(a, b))
    return math.exp(-sum((p - q) ** 2 for p, q in zip(a, b)) / (2 * sigma**2))


def _gram(u, kernel, sigma):
    return torch.tensor([[_k(a, b, kernel, sigma) for b in u] for a in u], dtype=torch.float64)


def ref_median(u):
    d = [math.dist(u[i], u[j]) for i in range(len(u)) for j in range(i + 1, len(u))]
    d = [v for v in d if v > 1e-12]
    return statistics.median(d) if d else 1.0


def _prep(x, y, normalize):
    x, y = x.double().tolist(), y.double().tolist()
    return (_unit(x), _unit(y)) if normalize else (x, y)


def ref_biased(x, y, kernel="rbf", sx=1.0, sy=1.0, normalize=True):
    x, y = _prep(x, y, normalize)
    n = len(x)
    k, l = _gram(x, kernel, sx), _gram(y, kernel, sy)
    h = torch.eye(n, dtype=torch.float64) - torch.ones(n, n, dtype=torch.float64) / n
    return float(torch.trace(k @ h @ l @ h)) / (n - 1) ** 2


def ref_unbiased(x, y, kernel="rbf", sx=1.0, sy=1.0, normalize=True):
    x, y = _prep(x, y, normalize)
    n = len(x)
    k, l = _gram(x, kernel, sx), _gram(y, kernel, sy)
    for i in range(n):
        k[i, i] = 0.0
        l[i, i] = 0.0
    one = torch.ones(n, dtype=torch.float64)
    value = (torch.trace(k @ l) + (one @ k @ one) * (one @ l @ one) / ((n - 1) * (n - 2))
             - 2.0 / (n - 2) * (one @ k @ l @ one))
    return float(value) / (n * (n - 3))


def ref_paper(x, y, kernel="rbf", sigma=1.0, normalize=True):
    x, y = _prep(x, y, normalize)
    per_sample = [(_k(a, b, kernel, sigma) - _k(a, a, kernel, sigma) * _k(b, b, kernel, sigma)) ** 2
                  for a, b in zip(x, y)]
    return sum(per_sample) / len(per_sample)


def _randn(*shape, seed):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


# -- agreement with the formulas ----------------------------------------------------------------------
@pytest.mark.parametrize("normalize", [True, False])
@pytest.mark.parametrize("sigma", [None, 0.7])
def test_biased_and_unbiased_match_reference(normalize, sigma):
    x, y = _randn(20, 5, seed=0), _randn(20, 3, seed=1)
    for estimator, ref in (("biased", ref_biased), ("unbiased", ref_unbiased)):
        value, (sx, sy) = hsic(x, y, estimator=estimator, sigma=sigma, normalize=normalize, return_sigma=True)
        if sigma is None:  # median heuristic, separately for x and y, on the (normalised) features
            px, py = _prep(x, y, normalize)
            assert sx == pytest.approx(ref_median(px), rel=1e-5)
            assert sy == pytest.approx(ref_median(py), rel=1e-5)
        else:
            assert (sx, sy) == (sigma, sigma)
        assert value.dtype == torch.float32 and value.ndim == 0
        assert float(value) == pytest.approx(ref(x, y, "rbf", sx, sy, normalize), rel=1e-4, abs=1e-7)


@pytest.mark.parametrize("normalize", [True, False])
def test_linear_kernel_matches_reference(normalize):
    x, y = _randn(16, 4, seed=2), _randn(16, 4, seed=3)
    value, sigmas = hsic(x, y, kernel="linear", estimator="biased", normalize=normalize, return_sigma=True)
    assert sigmas is None
    assert float(value) == pytest.approx(ref_biased(x, y, "linear", normalize=normalize), rel=1e-4, abs=1e-7)
    value = hsic(x, y, kernel="linear", estimator="unbiased", normalize=normalize)
    assert float(value) == pytest.approx(ref_unbiased(x, y, "linear", normalize=normalize), rel=1e-4, abs=1e-6)
    value = hsic(x, y, kernel="linear", estimator="paper", normalize=normalize)
    assert float(value) == pytest.approx(ref_paper(x, y, "linear", normalize=normalize), rel=1e-4, abs=1e-7)


@pytest.mark.parametrize("kernel", ["rbf", "linear"])
def test_paper_estimator_is_eq_2_to_4(kernel):
    x, y = _randn(12, 6, seed=4), _randn(12, 6, seed=5)
    value, sigmas = hsic(x, y, kernel=kernel, estimator="paper", return_sigma=True)
    sigma = None if sigmas is None else sigmas[0]
    if kernel == "rbf":  # one bandwidth for the cross kernel: median over the pooled rows of x and y
        px, py = _prep(x, y, True)
        assert sigma == pytest.approx(ref_median(px + py), rel=1e-5)
    assert float(value) == pytest.approx(ref_paper(x, y, kernel, sigma), rel=1e-4, abs=1e-7)


@pytest.mark.parametrize("kernel", ["rbf", "linear"])
def test_finding_paper_loss_is_minimised_when_branches_are_equal(kernel):
    """The DSID paper's printed HSIC is (k(x_i, y_i) - 1)^2 on unit vectors: zero iff x_i = y_i.

    Minimising it therefore pulls the true and disguised features together, while a real estimator is
    largest when y is a copy of x (total dependence) and near zero for independent y.
    """
    x, y = _randn(64, 8, seed=6), _randn(64, 8, seed=7)
    same_paper = hsic(x, x.clone(), kernel=kernel, estimator="paper")
    indep_paper = hsic(x, y, kernel=kernel, estimator="paper")
    assert float(same_paper) == pytest.approx(0.0, abs=1e-10)
    assert float(indep_paper) > 0.01
    # the printed formula reduces to (k(x_i, y_i) - 1)^2 on unit vectors
    px, py = _prep(x, y, True)
    sigma = hsic(x, y, kernel=kernel, estimator="paper", return_sigma=True)[1]
    s = None if sigma is None else sigma[0]
    reduced = sum((_k(a, b, kernel, s) - 1.0) ** 2 for a, b in zip(px, py)) / len(px)
    assert float(indep_paper) == pytest.approx(reduced, rel=1e-4)
    for estimator in ("biased", "unbiased"):
        same = hsic(x, x.clone(), kernel=kernel, estimator=estimator)
        indep = hsic(x, y, kernel=kernel, estimator=estimator)
        assert float(same) > 5 * abs(float(indep))


# -- statistical properties ---------------------------------------------------------------------------
def test_independent_near_zero_and_shrinking_with_n():
    def mean_abs(estimator, n):
        return statistics.mean(abs(float(hsic(_randn(n, 2, seed=s), _randn(n, 2, seed=100 + s),
                                              estimator=estimator))) for s in range(8))

    for estimator in ("biased", "unbiased"):
        small, large = mean_abs(estimator, 64), mean_abs(estimator, 512)
        assert small < 0.01 and large < small / 3, (estimator, small, large)


@pytest.mark.parametrize("normalize", [True, False])
def test_dependent_clearly_larger_than_independent(normalize):
    for seed in range(3):
        x = _randn(128, 2, seed=seed)
        noise = 0.05 * _randn(128, 2, seed=50 + seed)
        dependent = torch.sin(2 * x) + noise  # nonlinear function of x
        independent = _randn(128, 2, seed=200 + seed)
        for estimator in ("biased", "unbiased"):
            dep = float(hsic(x, dependent, estimator=estimator, normalize=normalize))
            ind = float(hsic(x, independent, estimator=estimator, normalize=normalize))
            assert dep > 3 * abs(ind) and dep > 0.003, (estimator, dep, ind)


@pytest.mark.parametrize("estimator", ESTIMATORS)
@pytest.mark.parametrize("kernel", ["rbf", "linear"])
def test_symmetric_and_permutation_invariant(estimator, kernel):
    x = _randn(24, 6, seed=8)
    y = torch.tanh(x @ _randn(6, 6, seed=9)) + 0.3 * _randn(24, 6, seed=10)
    value = hsic(x, y, estimator=estimator, kernel=kernel)
    assert torch.allclose(value, hsic(y, x, estimator=estimator, kernel=kernel), rtol=1e-5, atol=1e-7)
    perm = torch.randperm(24, generator=torch.Generator().manual_seed(11))
    assert torch.allclose(value, hsic(x[perm], y[perm], estimator=estimator, kernel=kernel), rtol=1e-4,
                          atol=1e-7)


# -- numerics -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("estimator", ESTIMATORS)
@pytest.mark.parametrize("kernel", ["rbf", "linear"])
def test_finite_gradients_degenerate_inputs(estimator, kernel):
    base = _randn(8, 5, seed=12)
    cases = {
        "x == y": (base, base),
        "duplicated rows": (base[[0, 0, 1, 1, 2, 2, 3, 3]], base[[4, 4, 5, 5, 6, 6, 7, 7]]),
        "all rows equal": (base[[0] * 8], base[[1] * 8]),
    }
    for name, (x0, y0) in cases.items():
        x = x0.clone().requires_grad_(True)
        y = x if name == "x == y" else y0.clone().requires_grad_(True)
        value = hsic(x, y, estimator=estimator, kernel=kernel)
        value.backward()
        assert torch.isfinite(value), name
        assert torch.isfinite(x.grad).all(), name


def test_median_sigma_ignores_zero_distances_and_falls_back():
    u = torch.tensor([[0.0, 0.0], [0.0, 0.0], [3.0, 4.0]])
    assert median_sigma(u) == pytest.approx(5.0)  # pairs: 0 (dropped), 5, 5
    assert median_sigma(torch.ones(4, 3)) == 1.0


@pytest.mark.parametrize("estimator", ESTIMATORS)
def test_bf16_under_autocast_computes_in_float32(estimator):
    x = _randn(16, 8, seed=13).bfloat16()
    y = _randn(16, 8, seed=14).bfloat16()
    with torch.autocast(device_type="cpu", dtype=torch.bfloat16):
        value = hsic(x, y, estimator=estimator)
    assert value.dtype == torch.float32
    assert torch.equal(value, hsic(x.float(), y.float(), estimator=estimator))


def test_clear_errors():
    x = _randn(3, 4, seed=15)
    with pytest.raises(UnmaskError, match="at least 4"):
        hsic(x, x, estimator="unbiased")
    with pytest.raises(UnmaskError, match="biased, unbiased, paper"):
        hsic(x, x, estimator="gretton")
    with pytest.raises(UnmaskError, match="rbf, linear"):
        hsic(x, x, kernel="poly")
    with pytest.raises(UnmaskError, match="equal widths"):
        hsic(x, _randn(3, 2, seed=16), estimator="paper")
    with pytest.raises(ValueError, match="same n"):
        hsic(x, _randn(4, 4, seed=17))
