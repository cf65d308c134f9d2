"""Orchestration: build (adapt -> generate -> export), executors, exports, splits, presets; eval/, report/.
May import schemas, scenes and datagen."""
