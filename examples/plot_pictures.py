"""
Looking at a clustering
=======================

The four plots of :mod:`skjule.plotting` on one JULE run over scikit-learn's
digits: the clusters as rows of images, the learned embedding in 3-D, the
number of clusters and the training loss per period, and the last merges of
the final agglomerative run as a dendrogram.
"""

import matplotlib.pyplot as plt
from sklearn.datasets import load_digits

from skjule import JULEClustering
from skjule.plotting import (
    plot_cluster_montage,
    plot_dendrogram,
    plot_embedding,
    plot_history,
)

X, y = load_digits(return_X_y=True)
images = X.reshape(-1, 8, 8)
est = JULEClustering(n_clusters=10, random_state=0).fit(images)

# %%
# Each row: 12 random members of one cluster, with the cluster's size.
plot_cluster_montage(images, est.labels_, n_per_cluster=12)
plt.show()

# %%
# The learned 160-d embedding, projected to 3-D by PCA, coloured by cluster.
fig = plt.figure(figsize=(6, 5))
plot_embedding(est.embedding_, est.labels_, n_components=3, ax=fig.add_subplot(projection="3d"))
plt.show()

# %%
# Partial unrolling: hundreds of small clusters merged in a few periods.
plot_history(est)
plt.show()

# %%
# The last merges of the final ("RC") run; leaves read "final cluster: size".
plot_dendrogram(est, n_leaves=30)
plt.show()
