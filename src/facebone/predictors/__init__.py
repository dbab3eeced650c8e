"""Predictors: decide from two face embeddings whether they show the same person.

Use the registry rather than the classes:

    predictor = create_predictor("cosine").fit(e1, e2, y, source)
    p_same = predictor.predict_proba(e1_test, e2_test, source_test)
    config, tensors = predictor.get_state()          # JSON + arrays (safetensors), no pickle
    again = predictor_from_state(config, tensors)

Names: "cosine", "euclidean", "chi-square", "bhattacharyya" (distance.py) and "nn" (nn.py).
"""

from facebone.predictors.base import (
    InvalidPairsError,
    NotFittedError,
    Predictor,
    PredictorStateError,
    l2_normalize,
)
from facebone.predictors.distance import (
    BhattacharyyaPredictor,
    ChiSquarePredictor,
    CosinePredictor,
    DistancePredictor,
    EuclideanPredictor,
)
from facebone.predictors.nn import NNPredictor, pair_features
from facebone.predictors.registry import (
    PREDICTORS,
    create_predictor,
    get_predictor_class,
    list_predictors,
    predictor_from_state,
    register_predictor,
)

__all__ = [
    "PREDICTORS",
    "BhattacharyyaPredictor",
    "ChiSquarePredictor",
    "CosinePredictor",
    "DistancePredictor",
    "EuclideanPredictor",
    "InvalidPairsError",
    "NNPredictor",
    "NotFittedError",
    "Predictor",
    "PredictorStateError",
    "create_predictor",
    "get_predictor_class",
    "l2_normalize",
    "list_predictors",
    "pair_features",
    "predictor_from_state",
    "register_predictor",
]
