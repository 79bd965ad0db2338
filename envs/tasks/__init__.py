"""Robot tasks: observation, reward and termination math written once, over a batch of simulations."""
