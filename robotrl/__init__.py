"""robotrl: robot learning in MuJoCo, from the command line to a robot's control loop."""

__version__ = "0.1.0"
