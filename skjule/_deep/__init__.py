"""The deep side: everything that needs PyTorch (``pip install 'skjule[deep]'``).

Imported only on first access of a deep estimator (see ``skjule/__init__.py``),
so the engine in :mod:`skjule._engine` never pays for torch.

- ``_networks``: the paper's CNN, the MLP for feature vectors, user backbones
  (frozen or fine-tuned) and device selection.
- ``_losses``, ``_training``: the weighted triplet loss and the SGD loop.
- ``_inputs``: image shapes and input standardisation.
- ``_jule``: :class:`JULEClustering` / :class:`JULETransformer`, the recurrent
  loop of training and agglomerative merging (uses the engine).
- ``_autoencoder``, ``_deepgmm``: :class:`AutoencoderTransformer` and
  :class:`DeepGMMClustering`.
- ``_features``: :class:`FeatureExtractor`, frozen features from any network.
- ``_checkpoint``, ``_persistence``: data-only checkpoints and pickling.
"""
