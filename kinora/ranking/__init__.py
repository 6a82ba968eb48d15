"""The feed ranker: events to features (point in time), a multi-task PyTorch model, offline
evaluation against baselines, a gated registry, and the serving side the feed endpoint uses."""
