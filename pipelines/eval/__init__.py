"""Evaluation: VSI-Bench-compatible scoring and the chance / frequency / blind baselines.
Part of pipelines: may import pipelines, datagen, scenes and schemas."""
