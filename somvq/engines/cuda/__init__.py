"""The CUDA engine, in five parts (imported only when ``backend="cuda"`` is used).

* :mod:`.device` - availability (a GPU or the simulator), device arrays, and validated
  training data on the device (:class:`~.device.DeviceData`);
* :mod:`.steps` - the functions of :mod:`somvq.algorithms` on device arrays (fast paths
  over the kernels in ``somvq/_kernels/cuda_*.py``);
* :mod:`.resident` - the device-resident copy of an estimator's state, kept between calls;
* :mod:`.engine` - :class:`~.engine.CudaEngine`, the passes of the three algorithms;
* :mod:`.masked` - ``missing="ignore"``: the masked definitions of :mod:`somvq.missing`
  on the device (search, statistics, the passes of the three algorithms).

Nothing here imports ``numba.cuda`` at import time; ``import somvq`` and CPU fits never
import this package.
"""

from .device import (
    DeviceData,
    as_device_array,
    availability,
    is_device_array,
    require_cuda,
    simulator_enabled,
)
from .engine import CudaEngine
from .resident import device_codebook
from .steps import (
    DeviceUnitStatistics,
    assign,
    batch_update_inplace,
    ema_update_inplace,
    neighbourhood_matrix,
    online_pass_inplace,
    smooth_statistics,
    unit_statistics,
)

__all__ = [
    "CudaEngine",
    "DeviceData",
    "DeviceUnitStatistics",
    "as_device_array",
    "assign",
    "availability",
    "batch_update_inplace",
    "device_codebook",
    "ema_update_inplace",
    "is_device_array",
    "neighbourhood_matrix",
    "online_pass_inplace",
    "require_cuda",
    "simulator_enabled",
    "smooth_statistics",
    "unit_statistics",
]
