"""Private compiled kernels.

``cpu_*`` modules hold the Numba CPU kernels, ``cuda_*`` modules (when present) mirror them
module for module. Kernels take plain arrays and integer codes, write into buffers the
caller allocated, and never import the estimator layer. Nothing here is compiled at import
of :mod:`somvq`; these modules are imported by the algorithm layer when a fit starts.
"""
