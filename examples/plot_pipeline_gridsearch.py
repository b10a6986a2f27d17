"""
Pipelines and GridSearchCV
==========================

skjule's estimators are ordinary scikit-learn estimators. Here

* :class:`~skjule.JULETransformer` learns a representation that a
  ``KMeans`` then clusters, in one ``Pipeline``;
* ``GridSearchCV`` picks the kNN graph size ``n_neighbors`` of
  :class:`~skjule.GDLClustering`. Clusterings are scored against labels on the
  held-out folds (``predict`` gives a new sample the majority cluster of its
  nearest training samples), so this needs a labelled sample of the data.
"""

import matplotlib.pyplot as plt
from sklearn.cluster import KMeans
from sklearn.datasets import load_digits
from sklearn.metrics import normalized_mutual_info_score
from sklearn.model_selection import GridSearchCV, KFold
from sklearn.pipeline import make_pipeline

from skjule import GDLClustering, JULETransformer

X, y = load_digits(return_X_y=True)  # flat 8x8 images

pipe = make_pipeline(
    JULETransformer(n_clusters=10, image_shape=(8, 8), random_state=0),
    KMeans(10, n_init=10, random_state=0),
)
labels = pipe.fit_predict(X)
print(f"JULE features + KMeans: NMI {normalized_mutual_info_score(y, labels):.3f}")

# %%
# A grid search over the engine's graph.
search = GridSearchCV(
    GDLClustering(n_clusters=10, random_state=0),
    {"n_neighbors": [5, 10, 20, 40]},
    scoring="adjusted_rand_score",
    cv=KFold(3, shuffle=True, random_state=0),
)
search.fit(X, y)
print("best:", search.best_params_, f"ARI {search.best_score_:.3f}")

ks = search.cv_results_["param_n_neighbors"].data
fig, ax = plt.subplots(figsize=(5, 3.5))
ax.errorbar(
    ks,
    search.cv_results_["mean_test_score"],
    yerr=search.cv_results_["std_test_score"],
    marker="o",
    capsize=3,
)
ax.set_xscale("log", base=2)
ax.set_xlabel("n_neighbors (Ks)")
ax.set_ylabel("held-out ARI")
ax.set_title("GDLClustering on digits, 3-fold")
fig.tight_layout()
plt.show()
