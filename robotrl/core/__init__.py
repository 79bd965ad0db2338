"""The pieces agents are built from: rollout storage, replay buffers, returns (GAE, n-step), schedules,
running statistics, flat parameters, weight averaging, augmentation, episode statistics, thread limits.

The lowest layer of robotrl: it knows nothing of configs, agents or the trainer."""
