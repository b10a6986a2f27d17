"""Triplet losses of JULE's backward pass.

Triplets are formed inside a batch: every ordered pair ``(i, j)`` of distinct
samples with the same cluster label is an (anchor, positive) pair, and the
negatives of anchor ``i`` are its ``n_negatives`` nearest batch samples (by
the current embedding) with a different label, as the paper describes for
eq. 11.

* ``weighted`` (eq. 11): ``-lam / (Kc - 1) * mean_{ijk} (gamma A(i,j) - A(i,k))``
  with the sample affinity ``A(i,j) = exp(-||x_i - x_j||^2 / sigma2)`` of eq. 4.
  By default ``sigma2 = a * mean squared distance between the batch's samples``,
  taken from the batch and not differentiated. That makes the loss invariant
  to a uniform shrinking of the embedding: with a fixed ``sigma2`` the
  affinity's gradient vanishes as all points contract, and with ``gamma = 2``
  the network can collapse every sample onto one point within a few periods;
  this is why JULE defaults to the margin form below.
* ``margin`` (the authors' code): ``mean_{ijk} max(0, gamma ||a-p||^2 - ||a-n||^2 + margin)``.

Both are written with torch operations only, so autograd gives the gradient
(the authors' hand-written gradient had an in-place bug; see the notes).
"""

import torch

__all__ = [
    "batch_triplets",
    "weighted_triplet_loss",
    "margin_triplet_loss",
    "soft_margin_triplet_loss",
    "sq_distances",
]


def sq_distances(z):
    """Pairwise squared Euclidean distances of the rows of ``z`` (B, D) -> (B, B)."""
    sq = (z * z).sum(1)
    d2 = sq[:, None] + sq[None, :] - 2.0 * (z @ z.T)
    return d2.clamp_min(0.0)


def batch_triplets(d2, labels, n_negatives, negatives="nearest", generator=None):
    """Masks describing the triplets of a batch.

    Parameters
    ----------
    d2 : Tensor (B, B)
        Squared distances (only used to rank negatives; not differentiated).
    labels : Tensor (B,)
        Cluster labels of the batch.
    n_negatives : int
        Negatives per anchor.
    negatives : {"nearest", "random"}
        The anchor's nearest samples from other clusters (the paper), or
        random ones (the authors' code).
    generator : torch.Generator, optional
        For ``"random"``.

    Returns
    -------
    pos : bool Tensor (B, B)
        ``pos[i, j]``: j is a positive of anchor i.
    neg_idx : long Tensor (B, n)
        Indices of the negatives of each anchor.
    neg_ok : bool Tensor (B, n)
        Which of those are real (an anchor may have fewer other-cluster samples).
    """
    B = labels.shape[0]
    same = labels[:, None] == labels[None, :]
    eye = torch.eye(B, dtype=torch.bool, device=labels.device)
    pos = same & ~eye
    n = max(1, min(int(n_negatives), B - 1))
    if negatives == "random":
        score = torch.rand(d2.shape, generator=generator, device="cpu").to(d2.device)
    else:
        score = d2.detach()
    masked = score.masked_fill(same, float("inf"))
    vals, neg_idx = torch.topk(masked, n, dim=1, largest=False)
    neg_ok = torch.isfinite(vals)
    return pos, neg_idx, neg_ok


def _triplet_mask(pos, neg_ok):
    return pos[:, :, None] & neg_ok[:, None, :]


def weighted_triplet_loss(
    z,
    labels,
    *,
    sigma2=None,
    a=1.0,
    gamma=2.0,
    lam=1.0,
    n_negatives=5,
    negatives="nearest",
    generator=None,
):
    """Eq. 11 on a batch, averaged over its triplets.

    Parameters
    ----------
    z : Tensor (B, D)
        Embeddings (L2-normalised by the network).
    labels : Tensor (B,)
        Cluster labels.
    sigma2 : float or None
        Scale of the affinity ``exp(-d^2 / sigma2)``; None: ``a`` times the mean
        squared distance between distinct samples of the batch (detached).
    a : float
        Scale factor of the batch ``sigma2`` (the ``a`` of eq. 4).
    gamma, lam : float
        ``gamma`` and ``lambda`` of the paper; ``n_negatives`` is ``Kc``.

    Returns
    -------
    loss : Tensor (scalar)
        0 (with a graph) when the batch has no triplet.
    n_triplets : int
    """
    d2 = sq_distances(z)
    pos, neg_idx, neg_ok = batch_triplets(d2, labels, n_negatives, negatives, generator)
    if sigma2 is None:
        B = d2.shape[0]
        sigma2 = a * d2.detach().sum() / max(B * (B - 1), 1)
        sigma2 = sigma2.clamp_min(1e-12)
    A = torch.exp(-d2 / sigma2)
    A_neg = A.gather(1, neg_idx)
    mask = _triplet_mask(pos, neg_ok)
    n_trip = int(mask.sum())
    if n_trip == 0:
        return z.sum() * 0.0, 0
    terms = gamma * A[:, :, None] - A_neg[:, None, :]
    scale = lam / max(int(n_negatives) - 1, 1)
    return -scale * terms[mask].mean(), n_trip


def margin_triplet_loss(
    z, labels, *, gamma=1.0, margin=0.2, n_negatives=5, negatives="nearest", generator=None
):
    """The authors' margin form: ``mean max(0, gamma d(a,p) - d(a,n) + margin)``."""
    terms, _, _, _ = _margin_terms(z, labels, gamma, margin, n_negatives, negatives, generator)
    if terms is None:
        return z.sum() * 0.0, 0
    return terms.mean(), terms.numel()


def _margin_terms(z, labels, gamma, margin, n_negatives, negatives, generator):
    """``(terms, mask, neg_idx, d2)``: the hinge terms of the batch's triplets
    (None when it has none), the triplet mask that selected them, the
    negatives' indices and the squared distances."""
    d2 = sq_distances(z)
    pos, neg_idx, neg_ok = batch_triplets(d2, labels, n_negatives, negatives, generator)
    d_neg = d2.gather(1, neg_idx)
    mask = _triplet_mask(pos, neg_ok)
    if not bool(mask.any()):
        return None, mask, neg_idx, d2
    terms = torch.relu(gamma * d2[:, :, None] - d_neg[:, None, :] + margin)
    return terms[mask], mask, neg_idx, d2


def soft_margin_triplet_loss(
    z,
    labels,
    *,
    resp,
    gamma=1.0,
    margin=0.2,
    n_negatives=5,
    negatives="nearest",
    generator=None,
):
    """The margin loss with triplets weighted by a mixture's responsibilities.

    Triplets are those of :func:`margin_triplet_loss` on the hard labels
    (``labels``, the most probable components). The triplet ``(a, p, n)``
    weighs ``s(a, p) * (1 - s(a, n))``, where ``s(i, j) = sum_c r_ic r_jc`` is
    the probability that ``i`` and ``j`` come from the same component under
    the responsibilities ``r``: pairs the mixture is unsure of pull and push
    less. The weights are constants (not differentiated); the loss is the
    weighted mean of the hinge terms.

    Parameters
    ----------
    z : Tensor (B, D)
        Embeddings.
    labels : Tensor (B,)
        Hard labels (argmax of ``resp``).
    resp : Tensor (B, K)
        Responsibilities of the batch's samples (rows sum to 1).
    gamma, margin, n_negatives, negatives, generator
        As for :func:`margin_triplet_loss`.

    Returns
    -------
    loss : Tensor (scalar)
    n_triplets : int
    """
    terms, mask, neg_idx, _ = _margin_terms(
        z, labels, gamma, margin, n_negatives, negatives, generator
    )
    if terms is None:
        return z.sum() * 0.0, 0
    r = resp.to(z.dtype)
    same = r @ r.T  # (B, B): P(i and j share a component)
    w = same[:, :, None] * (1.0 - same.gather(1, neg_idx))[:, None, :]
    w = w.detach()[mask]
    total = w.sum()
    if float(total) <= 0.0:
        return z.sum() * 0.0, 0
    return (w * terms).sum() / total, terms.numel()
