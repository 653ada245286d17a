"""The seed losses against hand-computed values, and their autograd gradients."""

import math

import pytest
import torch

from sklearn_modgap.losses import atp_loss, cma_loss, cu_loss, info_nce


def _unit(*angles):
    return torch.tensor([[math.cos(t), math.sin(t)] for t in angles], dtype=torch.float64)


def _softplus(x):
    return math.log1p(math.exp(x))


# Two pairs on the circle: images at 0 and 90 degrees, texts at 30 and 100.
A = _unit(0.0, math.pi / 2)
B = _unit(math.pi / 6, math.radians(100))
COS = {
    "a0b0": math.cos(math.pi / 6),
    "a0b1": math.cos(math.radians(100)),
    "a1b0": math.cos(math.pi / 2 - math.pi / 6),
    "a1b1": math.cos(math.radians(10)),
    "a0a1": 0.0,
    "b0b1": math.cos(math.radians(70)),
}


def _hand_info_nce(tau, weight=1.0):
    # With two pairs, each row's CE is log(1 + w * exp((s_neg - s_pos) / tau)).
    def row(pos, neg):
        return math.log1p(weight * math.exp((neg - pos) / tau))

    image_rows = row(COS["a0b0"], COS["a0b1"]) + row(COS["a1b1"], COS["a1b0"])
    text_rows = row(COS["a0b0"], COS["a1b0"]) + row(COS["a1b1"], COS["a0b1"])
    return 0.25 * (image_rows + text_rows)


def _hand_intra(tau):
    # Texts as anchors: b_i scores a_i against the other text b_j; and back.
    texts = _softplus((COS["b0b1"] - COS["a0b0"]) / tau) + _softplus(
        (COS["b0b1"] - COS["a1b1"]) / tau
    )
    images = _softplus((COS["a0a1"] - COS["a0b0"]) / tau) + _softplus(
        (COS["a0a1"] - COS["a1b1"]) / tau
    )
    return 0.25 * (texts + images)


@pytest.mark.parametrize("tau", [0.1, 0.5, 1.0])
def test_info_nce_matches_the_hand_computed_value(tau):
    assert float(info_nce(A, B, temperature=tau)) == pytest.approx(_hand_info_nce(tau), rel=1e-12)


def test_info_nce_is_symmetric_in_the_modalities():
    a, b = torch.randn(6, 4, dtype=torch.float64), torch.randn(6, 4, dtype=torch.float64)
    assert torch.isclose(info_nce(a, b), info_nce(b, a))


def test_cma_at_alpha_zero_is_info_nce():
    a, b = torch.randn(7, 5, dtype=torch.float64), torch.randn(7, 5, dtype=torch.float64)
    assert torch.equal(cma_loss(a, b, alpha=0.0, temperature=0.2), info_nce(a, b, temperature=0.2))


@pytest.mark.parametrize("alpha", [0.3, 1.0])
@pytest.mark.parametrize("reweight", [0.0, 0.05, 0.5])
def test_cma_matches_the_hand_computed_mixture(alpha, reweight):
    tau = 0.25
    expected = (1 - alpha) * _hand_info_nce(tau, weight=1 - reweight * alpha) + alpha * _hand_intra(tau)
    got = cma_loss(A, B, alpha=alpha, temperature=tau, reweight=reweight, reweighting="log_additive")
    assert float(got) == pytest.approx(expected, rel=1e-12)


# A 3x3 toy: images are the standard basis, so the logit l_ij = a_i . b_j / tau
# is coordinate i of text j.
A3 = torch.eye(3, dtype=torch.float64)
B3 = torch.tensor([[0.8, 0.6, 0.0], [0.0, 0.6, 0.8], [0.6, 0.0, 0.8]], dtype=torch.float64)
S3 = [[0.8, 0.0, 0.6], [0.6, 0.6, 0.0], [0.0, 0.8, 0.8]]  # S3[i][j] = a_i . b_j


def _dot(u, v):
    return sum(x * y for x, y in zip(u, v))


def _row_ce(logits, i):
    return -logits[i] + math.log(sum(math.exp(value) for value in logits))


def _hand_cross(tau, w, form):
    def weighted(row, i):
        if form == "hadamard":  # exp(w * l_ij) for the negatives
            return [row[j] / tau if j == i else w * row[j] / tau for j in range(3)]
        return [row[j] / tau if j == i else row[j] / tau + math.log(w) for j in range(3)]

    images = sum(_row_ce(weighted(S3[i], i), i) for i in range(3)) / 3
    columns = [[S3[j][i] for j in range(3)] for i in range(3)]
    texts = sum(_row_ce(weighted(columns[i], i), i) for i in range(3)) / 3
    return 0.5 * (images + texts)


def _hand_intra3(tau):
    a, b = A3.tolist(), B3.tolist()

    def inserted(anchors, partners):
        total = 0.0
        for i in range(3):
            row = [
                _dot(anchors[i], partners[i]) / tau if j == i else _dot(anchors[i], anchors[j]) / tau
                for j in range(3)
            ]
            total += _row_ce(row, i)
        return total / 3

    return 0.5 * (inserted(b, a) + inserted(a, b))


@pytest.mark.parametrize("form", ["hadamard", "log_additive"])
def test_cma_reweighting_forms_match_the_hand_computed_3x3_toy(form):
    tau, alpha, reweight = 0.5, 0.4, 0.5
    w = 1 - reweight * alpha  # 0.8
    expected = (1 - alpha) * _hand_cross(tau, w, form) + alpha * _hand_intra3(tau)
    got = cma_loss(A3, B3, alpha=alpha, temperature=tau, reweight=reweight, reweighting=form)
    assert float(got) == pytest.approx(expected, rel=1e-12)


def test_hadamard_is_the_default_and_differs_from_log_additive():
    tau, alpha, reweight = 0.5, 0.4, 0.5
    default = float(cma_loss(A3, B3, alpha=alpha, temperature=tau, reweight=reweight))
    hadamard = (1 - alpha) * _hand_cross(tau, 0.8, "hadamard") + alpha * _hand_intra3(tau)
    additive = (1 - alpha) * _hand_cross(tau, 0.8, "log_additive") + alpha * _hand_intra3(tau)
    assert default == pytest.approx(hadamard, rel=1e-12)
    assert abs(hadamard - additive) > 1e-3


def test_cma_refuses_an_unknown_reweighting():
    with pytest.raises(ValueError, match="reweighting must be one of"):
        cma_loss(A, B, alpha=0.5, reweighting="multiplicative")


def test_cma_refuses_a_reweight_that_removes_the_negatives():
    with pytest.raises(ValueError, match=r"reweight must be in \[0, 1\)"):
        cma_loss(A, B, alpha=0.5, reweight=1.0)


def test_atp_is_the_mean_squared_pair_distance():
    # ||a0 - b0||^2 = 2 - 2 cos 30, ||a1 - b1||^2 = 2 - 2 cos 10.
    expected = 0.5 * ((2 - 2 * COS["a0b0"]) + (2 - 2 * COS["a1b1"]))
    assert float(atp_loss(A, B)) == pytest.approx(expected, rel=1e-12)


def test_cu_is_the_log_mean_potential_of_the_normalised_centroids():
    # Pairs (a_i, a_i) have centroid a_i: three points at 0, 90, 180 degrees.
    a = _unit(0.0, math.pi / 2, math.pi)
    sq = [2.0, 4.0, 2.0]  # squared chord lengths of the three pairs i < j
    expected = math.log(sum(math.exp(-2.0 * d) for d in sq) / 3)
    assert float(cu_loss(a, a)) == pytest.approx(expected, rel=1e-12)

    # Distinct partners: the centroid is the normalised bisector of each pair.
    b = _unit(math.pi / 3, math.pi / 2, math.pi)
    bisectors = [0.0 + math.pi / 6, math.pi / 2, math.pi]
    c = _unit(*bisectors)
    chords = [float(((c[i] - c[j]) ** 2).sum()) for i, j in [(0, 1), (0, 2), (1, 2)]]
    expected = math.log(sum(math.exp(-3.0 * d) for d in chords) / 3)
    assert float(cu_loss(a, b, t=3.0)) == pytest.approx(expected, rel=1e-12)


def test_cu_needs_two_pairs():
    with pytest.raises(ValueError, match="at least 2 pairs"):
        cu_loss(A[:1], B[:1])


@pytest.mark.parametrize(
    "loss",
    [
        lambda a, b: info_nce(a, b, temperature=0.3),
        lambda a, b: cma_loss(a, b, alpha=0.4, temperature=0.3, reweight=0.2),
        atp_loss,
        lambda a, b: cu_loss(a, b, t=2.0),
    ],
    ids=["info_nce", "cma", "atp", "cu"],
)
def test_gradients_match_finite_differences(loss):
    generator = torch.Generator().manual_seed(0)
    a = torch.randn(5, 3, dtype=torch.float64, generator=generator, requires_grad=True)
    b = torch.randn(5, 3, dtype=torch.float64, generator=generator, requires_grad=True)
    assert torch.autograd.gradcheck(loss, (a, b))
