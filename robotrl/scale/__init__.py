"""Scale-out on Ray: rollout workers for the on-policy agents, asynchronous A3C workers.

Ray is imported only inside this package, and only when a config asks for `scale.backend: ray`, so
the rest of robotrl runs without it installed.
"""
