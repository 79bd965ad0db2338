"""The loop around an agent: the trainer (run folder, checkpoints, resume), evaluation, the best-policy
keeper, metrics logging, the progress bar, plots, and training one config over several seeds."""
