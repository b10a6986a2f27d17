import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from skjule._deep._losses import (
    batch_triplets,
    margin_triplet_loss,
    sq_distances,
    weighted_triplet_loss,
)


def plain_triplets(z, labels, kc):
    """Enumerate (i, j, k) by loops: j same cluster as i, k among the kc nearest
    samples of i from other clusters."""
    B = len(labels)
    d = [[float(((z[i] - z[j]) ** 2).sum()) for j in range(B)] for i in range(B)]
    out = []
    for i in range(B):
        others = sorted((d[i][k], k) for k in range(B) if labels[k] != labels[i])[:kc]
        for j in range(B):
            if j != i and labels[j] == labels[i]:
                out += [(i, j, k) for _, k in others]
    return out


def plain_weighted(z, labels, sigma2, gamma, lam, kc):
    trip = plain_triplets(z.detach(), labels, kc)
    if not trip:
        return None
    terms = [
        gamma * torch.exp(-((z[i] - z[j]) ** 2).sum() / sigma2)
        - torch.exp(-((z[i] - z[k]) ** 2).sum() / sigma2)
        for i, j, k in trip
    ]
    return -lam / max(kc - 1, 1) * torch.stack(terms).mean()


def plain_margin(z, labels, gamma, margin, kc):
    trip = plain_triplets(z.detach(), labels, kc)
    if not trip:
        return None
    terms = [
        torch.relu(gamma * ((z[i] - z[j]) ** 2).sum() - ((z[i] - z[k]) ** 2).sum() + margin)
        for i, j, k in trip
    ]
    return torch.stack(terms).mean()


@settings(deadline=None, max_examples=30)
@given(
    seed=st.integers(0, 10**6),
    B=st.integers(2, 12),
    n_lab=st.integers(1, 4),
    kc=st.integers(1, 5),
    gamma=st.sampled_from([1.0, 2.0]),
    lam=st.sampled_from([0.5, 1.0]),
)
def test_losses_and_gradients_match_plain_loops(seed, B, n_lab, kc, gamma, lam):
    g = torch.Generator().manual_seed(seed)
    z0 = torch.nn.functional.normalize(torch.randn(B, 6, generator=g, dtype=torch.float64), dim=1)
    labels = torch.randint(0, n_lab, (B,), generator=g)
    lab = labels.tolist()
    for name in ("weighted", "margin"):
        z1 = z0.clone().requires_grad_(True)
        z2 = z0.clone().requires_grad_(True)
        if name == "weighted":
            got, n = weighted_triplet_loss(
                z1, labels, sigma2=0.7, gamma=gamma, lam=lam, n_negatives=kc
            )
            ref = plain_weighted(z2, lab, 0.7, gamma, lam, kc)
        else:
            got, n = margin_triplet_loss(z1, labels, gamma=gamma, margin=0.2, n_negatives=kc)
            ref = plain_margin(z2, lab, gamma, 0.2, kc)
        if ref is None:
            assert n == 0 and float(got.detach()) == 0.0
            continue
        assert n == len(plain_triplets(z0, lab, kc))
        assert float(got.detach()) == pytest.approx(float(ref.detach()), rel=1e-10, abs=1e-12)
        got.backward()
        ref.backward()
        np.testing.assert_allclose(z1.grad.numpy(), z2.grad.numpy(), rtol=1e-8, atol=1e-12)


def test_weighted_loss_gradcheck():
    g = torch.Generator().manual_seed(0)
    z = torch.randn(8, 4, generator=g, dtype=torch.float64, requires_grad=True)
    labels = torch.tensor([0, 0, 1, 1, 1, 2, 2, 0])

    def f(t):
        return weighted_triplet_loss(t, labels, sigma2=1.3, gamma=2.0, n_negatives=3)[0]

    assert torch.autograd.gradcheck(f, (z,))


def test_gradient_pulls_positives_and_pushes_negatives():
    """A gradient step on the positive moves it towards the anchor; a step on
    the negative moves it away from both anchors; the loss goes down."""
    z = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.5, 0.5]], dtype=torch.float64, requires_grad=True)
    labels = torch.tensor([0, 0, 1])
    loss, n = weighted_triplet_loss(z, labels, sigma2=1.0, n_negatives=1)
    assert n == 2
    loss.backward()
    d_before = sq_distances(z.detach())
    for moved in (1, 2):
        with torch.no_grad():
            z2 = z.detach().clone()
            z2[moved] -= 0.1 * z.grad[moved]
        d_after = sq_distances(z2)
        if moved == 1:
            assert d_after[0, 1] < d_before[0, 1]
        else:
            assert d_after[0, 2] > d_before[0, 2] and d_after[1, 2] > d_before[1, 2]
        assert weighted_triplet_loss(z2, labels, sigma2=1.0, n_negatives=1)[0] < loss


def test_batch_triplets_masks():
    z = torch.tensor([[0.0], [1.0], [3.0], [10.0]])
    labels = torch.tensor([0, 0, 1, 2])
    pos, neg_idx, neg_ok = batch_triplets(sq_distances(z), labels, 2)
    assert pos.tolist() == [
        [False, True, False, False],
        [True, False, False, False],
        [False] * 4,
        [False] * 4,
    ]
    # nearest other-cluster samples of sample 0: 2 (d=9) then 3 (d=100)
    assert neg_idx[0].tolist() == [2, 3]
    assert neg_ok.all()
    # sample 2 has three other-cluster samples; only two requested
    assert set(neg_idx[2].tolist()) == {1, 0}
    # a batch with a single label has no negatives
    pos, neg_idx, neg_ok = batch_triplets(sq_distances(z), torch.zeros(4, dtype=torch.long), 2)
    assert not neg_ok.any()


def test_batch_sigma2_is_scale_invariant_and_matches_plain_loop():
    """With sigma2=None the affinity scale is the batch's mean squared distance
    (not differentiated): shrinking the embedding changes nothing."""
    g = torch.Generator().manual_seed(1)
    z = torch.randn(10, 5, generator=g, dtype=torch.float64)
    labels = torch.tensor([0, 0, 0, 1, 1, 2, 2, 2, 3, 3])
    base, _ = weighted_triplet_loss(z, labels, a=1.5)
    for s in (0.01, 0.5, 7.0):
        assert float(weighted_triplet_loss(s * z, labels, a=1.5)[0]) == pytest.approx(
            float(base), rel=1e-10
        )
    # equals the plain loop with sigma2 computed the same way (as a constant)
    B = z.shape[0]
    sigma2 = 1.5 * float(sq_distances(z).sum()) / (B * (B - 1))
    z1 = z.clone().requires_grad_(True)
    z2 = z.clone().requires_grad_(True)
    got, _ = weighted_triplet_loss(z1, labels, a=1.5, gamma=2.0, n_negatives=3)
    ref = plain_weighted(z2, labels.tolist(), sigma2, 2.0, 1.0, 3)
    assert float(got.detach()) == pytest.approx(float(ref.detach()), rel=1e-10)
    got.backward()
    ref.backward()
    np.testing.assert_allclose(z1.grad.numpy(), z2.grad.numpy(), rtol=1e-8, atol=1e-12)
