"""Compile every CUDA kernel to PTX with the real numba-cuda compiler (no GPU needed).

The simulator runs kernels as Python and checks no types; this does. Run it in a process
*without* NUMBA_ENABLE_CUDASIM (``python -m tests.cuda.ptx_compile``); exit status 0 when
all kernels compiled, 3 when the compiler toolchain (NVRTC/NVVM wheels, e.g.
``pip install "numba-cuda[cu13]"``) is not installed, 1 on a compile error.
"""

import sys
import types as pytypes


def main() -> int:
    from numba import cuda
    from numba import types as T

    if getattr(cuda, "implementation", "") != "NVIDIA":
        print("the numba-cuda package is not installed (built-in numba.cuda)")
        return 3
    import numba.cuda.dispatcher as dispatcher

    # Device functions compile for the current device's compute capability; there is
    # none here, so name one (PTX for sm_80).
    dispatcher.get_current_device = lambda: pytypes.SimpleNamespace(compute_capability=(8, 0))
    try:
        cuda.compile_ptx(lambda a: None, (T.float64[:],), cc=(8, 0))
    except Exception as exc:  # NVRTC / NVVM libraries missing
        print(f"no CUDA compiler toolchain: {type(exc).__name__}: {str(exc)[:200]}")
        return 3

    from somvq._kernels import cuda_bmu, cuda_online, cuda_smoothing, cuda_update

    def A(dtype, ndim, layout="A"):
        return T.Array(dtype, ndim, layout)

    f64, i64, b1 = T.float64, T.int64, T.boolean
    compiled = 0

    def check(kernel, signature):
        nonlocal compiled
        cuda.compile_ptx(kernel.py_func, signature, cc=(8, 0))
        compiled += 1

    for name, dt in (("float32", T.float32), ("float64", T.float64)):
        check(cuda_bmu._build(16, 16, 32, name),
              (A(dt, 2), A(i64, 1), A(dt, 2, "C"), A(i64, 1, "C"), A(f64, 1, "C"), A(f64, 1, "C"),
               A(f64, 2, "C"), A(f64, 1, "C"), b1))
        histogram, offsets, starts, place, segmented, ordered = cuda_bmu._build_segmented(256)
        check(segmented, (A(dt, 2), A(i64, 1), A(i64, 1, "C"), A(i64, 1, "C"), A(i64, 1, "C"), A(f64, 1, "C"),
                          A(f64, 2, "C")))
        check(cuda_update._build(256, 256)["zero"], (A(i64, 2, "C"),))
        check(cuda_online._build(256),
              (A(dt, 2), A(dt, 2, "C"), A(i64, 1, "C"), i64, i64, A(f64, 2, "C"), i64, i64,
               A(f64, 1, "C"), i64, A(f64, 1, "C"), A(f64, 1, "C"), i64))
        kernels = cuda_update._build(256, 256)
        check(kernels["batch"], (A(dt, 2, "C"), A(f64, 1, "C"), A(f64, 2, "C")))
        check(kernels["ema_sum"], (A(f64, 1, "C"), A(f64, 2, "C"), A(dt, 2, "C"), A(f64, 1, "C"),
                                   A(f64, 2, "C"), f64, b1))
        check(kernels["cast"], (A(T.int32, 2), A(dt, 2, "C")))
        check(kernels["zero"], (A(dt, 2, "C"),))
        check(kernels["take"], (A(dt, 2, "C"), A(i64, 1, "C"), A(dt, 2, "C")))
        check(kernels["finite"], (A(dt, 2), A(i64, 1, "C")))
        check(kernels["moments"], (A(dt, 2), A(f64, 1, "C"), A(f64, 1, "C")))
    check(histogram, (A(i64, 1, "C"), i64, A(i64, 2, "C")))
    check(offsets, (A(i64, 2, "C"), A(i64, 1, "C")))
    check(starts, (A(i64, 1, "C"), A(i64, 1, "C")))
    check(place, (A(i64, 1, "C"), i64, A(i64, 2, "C"), A(i64, 1, "C"), A(i64, 1, "C")))
    check(ordered, (A(f64, 1, "C"), A(f64, 1, "C")))
    check(cuda_update._build(256, 256)["ema_count"], (A(f64, 1, "C"), A(f64, 1, "C"), f64, f64, b1))
    matrix_kernel, smooth_kernel = cuda_smoothing._build(16)
    check(matrix_kernel, (A(f64, 2, "C"), i64, f64, f64, A(f64, 2, "C")))
    check(smooth_kernel, (A(f64, 2, "C"), A(f64, 1, "C"), A(f64, 2, "C"), A(f64, 1, "C"), A(f64, 2, "C")))
    print(f"compiled {compiled} kernels to PTX")
    return 0


if __name__ == "__main__":
    sys.exit(main())
