"""skjule: deep image clustering (JULE) with a scikit-learn API."""

from ._autoencoder import AutoencoderTransformer
from ._deepgmm import DeepGMMClustering
from ._gdl import GDLClustering
from ._jule import JULEClustering, JULETransformer
from ._merge import MergeEngine, cut_hierarchy
from .metrics import clustering_accuracy

__version__ = "0.1.0.dev0"

__all__ = [
    "AutoencoderTransformer",
    "DeepGMMClustering",
    "GDLClustering",
    "JULEClustering",
    "JULETransformer",
    "MergeEngine",
    "clustering_accuracy",
    "cut_hierarchy",
    "__version__",
]
