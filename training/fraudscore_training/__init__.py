"""fraudscore training tools: feature oracle, synthetic data, training, evaluation."""

__all__ = ["featureset", "oracle", "generate", "train", "evaluate", "manifest"]
