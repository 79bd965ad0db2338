"""Things a person runs to look at and measure: the viewer, videos, the OpenGL choice, the env and deploy
benchmarks, the simulated UDP robot, deploy plots and the over-estimation measurement."""
