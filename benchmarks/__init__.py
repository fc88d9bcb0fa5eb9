"""Benchmarks of somvq against other SOM and k-means libraries (not tests).

Run ``python -m benchmarks.run --help``; the results go to ``docs/benchmarks.md``.
"""
