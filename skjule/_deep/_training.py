"""Network training on cluster labels (JULE's backward pass) and batched embedding.

The data stay on the CPU as one float32 tensor; only batches go to the
device, so device memory never holds more than a batch of inputs.
"""

import time

import numpy as np
import torch

from ._losses import margin_triplet_loss, soft_margin_triplet_loss, weighted_triplet_loss

__all__ = ["Trainer", "embed", "random_batches", "cluster_batches"]


def random_batches(n, batch_size, rng):
    """A random permutation of all samples cut into batches."""
    perm = rng.permutation(n)
    return [perm[i : i + batch_size] for i in range(0, n, batch_size)]


def cluster_batches(labels, batch_size, rng, group=10):
    """Batches made of whole groups of same-cluster samples.

    Each cluster's samples are shuffled and cut into groups of at most
    ``group``; the groups are shuffled and packed into batches of at most
    ``batch_size``. Every sample appears once per epoch and every batch holds
    many same-cluster pairs (random batches hold a handful when clusters are
    small).
    """
    order = np.argsort(labels, kind="stable")
    bounds = np.flatnonzero(np.diff(labels[order])) + 1
    groups = []
    for members in np.split(order, bounds):
        members = members[rng.permutation(members.size)]
        groups.extend(np.split(members, range(group, members.size, group)))
    batches, cur, size = [], [], 0
    for gi in rng.permutation(len(groups)):
        g = groups[gi]
        if size + g.size > batch_size and cur:
            batches.append(np.concatenate(cur))
            cur, size = [], 0
        cur.append(g)
        size += g.size
    if cur:
        batches.append(np.concatenate(cur))
    return batches


class Trainer:
    """SGD with momentum, weight decay and Caffe's "inv" learning-rate policy.

    ``lr = base_lr * (1 + lr_gamma * iteration) ** -lr_power``, where the
    iteration counts minibatches over the whole run (all periods).
    """

    def __init__(
        self,
        model,
        device,
        *,
        learning_rate=0.01,
        momentum=0.9,
        weight_decay=5e-5,
        lr_gamma=1e-4,
        lr_power=0.75,
    ):
        self.model = model
        self.device = device
        self.base_lr = learning_rate
        self.lr_gamma = lr_gamma
        self.lr_power = lr_power
        self.optimizer = torch.optim.SGD(
            model.parameters(), lr=learning_rate, momentum=momentum, weight_decay=weight_decay
        )
        self.iteration = 0

    def lr(self):
        return self.base_lr * (1.0 + self.lr_gamma * self.iteration) ** (-self.lr_power)

    def train(
        self,
        X,
        labels,
        *,
        epochs,
        batch_size,
        loss,
        sampling,
        rng,
        loss_kwargs,
        bar=None,
        max_steps=None,
        resp=None,
    ):
        """Train ``epochs`` epochs on ``labels``; returns a dict of statistics.

        ``resp``: None, or responsibilities ``(n, K)`` of a mixture; then the
        loss is :func:`soft_margin_triplet_loss` (``loss`` is ignored).

        ``max_steps``: None, or the most SGD steps (batches); training stops
        after that many even inside an epoch (every epoch is a fresh random
        order, so a cut epoch is an unbiased sample of one).
        """
        model = self.model
        model.train()
        labels_t = torch.as_tensor(labels, dtype=torch.long)
        loss_fn = weighted_triplet_loss if loss == "weighted" else margin_triplet_loss
        resp_t = None
        if resp is not None:
            loss_fn = soft_margin_triplet_loss
            resp_t = torch.as_tensor(np.asarray(resp, dtype=np.float32))
        total, n_batches, n_trip, seen = 0.0, 0, 0, 0
        t0 = time.perf_counter()
        budget = float("inf") if max_steps is None else int(max_steps)
        for _ in range(epochs):
            if n_batches >= budget:
                break
            if sampling == "cluster":
                batches = cluster_batches(labels, batch_size, rng)
            else:
                batches = random_batches(labels.shape[0], batch_size, rng)
            for idx in batches:
                if n_batches >= budget:
                    break
                if idx.size < 2:
                    continue
                idx_t = torch.from_numpy(idx)
                xb = X.index_select(0, idx_t).to(self.device, non_blocking=True)
                yb = labels_t.index_select(0, idx_t).to(self.device, non_blocking=True)
                z = model(xb)
                if resp_t is not None:
                    rb = resp_t.index_select(0, idx_t).to(self.device, non_blocking=True)
                    value, k = loss_fn(z, yb, resp=rb, **loss_kwargs)
                else:
                    value, k = loss_fn(z, yb, **loss_kwargs)
                for group in self.optimizer.param_groups:
                    group["lr"] = self.lr()
                self.optimizer.zero_grad(set_to_none=True)
                if k > 0:
                    value.backward()
                    self.optimizer.step()
                self.iteration += 1
                total += float(value.detach())
                n_batches += 1
                n_trip += k
                seen += idx.size
            if bar is not None:
                bar.update(1)
        seconds = time.perf_counter() - t0
        return {
            "steps": n_batches,
            "mean_loss": total / max(n_batches, 1),
            "triplets_per_batch": n_trip / max(n_batches, 1),
            "train_seconds": seconds,
            "images_per_second": seen / seconds if seconds > 0 else float("nan"),
        }


@torch.no_grad()
def embed(model, X, device, batch_size=64):
    """Outputs of ``model`` for all rows of the CPU tensor ``X``, as float32 numpy.

    Every forward pass sees exactly ``batch_size`` rows (the last batch is
    padded with zeros), so a sample's output never depends on how many other
    samples came with it: ``embed(X[:1])`` equals ``embed(X)[:1]`` bit for bit
    (BLAS picks different kernels for different batch sizes).
    """
    model.eval()
    out = []
    n = X.shape[0]
    for i in range(0, n, batch_size):
        xb = X[i : i + batch_size]
        m = xb.shape[0]
        if m < batch_size:
            xb = torch.cat([xb, xb.new_zeros((batch_size - m, *xb.shape[1:]))])
        z = model(xb.to(device, non_blocking=True))[:m]
        out.append(z.to("cpu", dtype=torch.float32).numpy())
    if not out:
        return np.zeros((0, 0), dtype=np.float32)
    return np.concatenate(out)
