"""Ray actors, the worker pool, the job service and the RL loop.

Ray is imported lazily, inside the modules that need it, so `proofcode grade` and friends start fast.
"""
