"""Cross-checks against stable-baselines3: the only place in robotrl that imports it (import-linter)."""
