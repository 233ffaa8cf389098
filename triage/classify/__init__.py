"""Classification: the estimator, training/evaluation, the model registry, batch prediction."""
