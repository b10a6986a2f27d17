"""
Deep GMM: soft clusters and uncertain samples
=============================================

:class:`~skjule.DeepGMMClustering` (Wang and Jiang) pretrains an autoencoder,
fits a Gaussian mixture to its codes and then trains both together. What it
gives that the agglomerative estimators do not is a probability model:

* ``predict_proba`` - how sure the model is of each sample's cluster;
* ``score_samples`` - how well the mixture explains each sample (low: an
  outlier).

Kept small here so that it runs in seconds: scikit-learn's digits, an
autoencoder narrower than the paper's (256-256-512-10 instead of
500-500-2000-10) pretrained for 40 epochs, and 5 joint epochs. See
:doc:`/deepgmm` for what to expect on real data.
"""

import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits
from sklearn.metrics import normalized_mutual_info_score as nmi

from skjule import AutoencoderTransformer, DeepGMMClustering
from skjule.plotting import plot_cluster_montage

X, y = load_digits(return_X_y=True)
X = X / 16.0  # pixels in [0, 1]

# %%
# Fit
# ---
# By default the mixture starts from a :class:`~skjule.GDLClustering`
# partition of the autoencoder's codes, and a pseudo-label stage trains the
# encoder and the mixture so that each code is likely under its own
# component. ``n_clusters`` must be given (default 10). The clusters stay
# close to the partition they start from: the deep GMM is a probability
# model *of* that partition more than an improvement on it.
dgmm = DeepGMMClustering(
    n_clusters=10,
    pseudo_label_epochs=10,
    autoencoder=AutoencoderTransformer(hidden_dims=(256, 256, 512), epochs=40, random_state=0),
    random_state=0,
).fit(X)
print(f"start (partition of the codes): NMI {nmi(y, dgmm.labels_init_):.3f}")
print(f"the mixture:                    NMI {nmi(y, dgmm.labels_):.3f}")

# %%
# How sure is each assignment?
# ----------------------------
# The largest posterior probability of each sample. Most samples sit firmly
# in one component; the few below 0.9 are the ones to look at.
proba = dgmm.predict_proba(X)
confidence = proba.max(axis=1)
fig, ax = plt.subplots(figsize=(6, 3.5), layout="constrained")
ax.hist(confidence, bins=40)
ax.set_xlabel("largest posterior probability")
ax.set_ylabel("samples")
plt.show()
print(f"{(confidence < 0.9).sum()} of {len(X)} samples below 0.9")

# %%
# The least certain samples, by their most probable cluster: often digits
# written between two classes, or badly written ones.
uncertain = np.argsort(confidence)[:40]
plot_cluster_montage(X[uncertain].reshape(-1, 8, 8), dgmm.labels_[uncertain], n_per_cluster=8)
plt.show()

# %%
# Outliers: the lowest log-likelihood
# -----------------------------------
# ``score_samples`` is the log-density of each sample's code under the
# mixture; the lowest are the samples the model explains worst. It works on
# new samples too, like ``predict`` and ``predict_proba``.
log_density = dgmm.score_samples(X)
worst = np.argsort(log_density)[:8]
fig, axes = plt.subplots(1, 8, figsize=(8, 1.4))
for ax, i in zip(axes, worst):
    ax.imshow(X[i].reshape(8, 8), cmap="gray_r")
    ax.set_title(f"{log_density[i]:.0f}", fontsize=8)
    ax.axis("off")
plt.show()

# %%
# The fitted mixture is available as ``means_``, ``covariances_`` (diagonal)
# and ``weights_``, in the space of the autoencoder's codes
# (``transform``).
codes = dgmm.transform(X)
print("codes", codes.shape, "means", dgmm.means_.shape, "weights", dgmm.weights_.round(2))
