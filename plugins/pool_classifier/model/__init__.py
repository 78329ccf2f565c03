"""The model: features' definitions, training, registry, evaluation, profiles, drift, report."""
