"""Compile every CUDA kernel to PTX with the real numba-cuda compiler (no GPU needed).

The simulator runs kernels as Python and checks no types; this does. Run it in a process
*without* NUMBA_ENABLE_CUDASIM (``python -m tests.cuda.ptx_compile``); exit status 0 when
all kernels compiled for every target (sm_80: A100, sm_90: H100/H200), 3 when the
compiler toolchain (NVRTC/NVVM wheels, ``pip install "numba-cuda[cu12]"``) is not
installed, 1 on a compile error. The signatures are the argument types the engine
launches with (device arrays are C-contiguous; ``X`` may be any strided view).
"""

import sys
import types as pytypes

# Compute capabilities compiled for: A100 (sm_80) and H100/H200 (sm_90).
TARGETS = ((8, 0), (9, 0))


def main() -> int:
    from numba import cuda
    from numba import types as T

    if getattr(cuda, "implementation", "") != "NVIDIA":
        print("the numba-cuda package is not installed (built-in numba.cuda)")
        return 3
    import numba.cuda.dispatcher as dispatcher

    try:
        cuda.compile_ptx(lambda a: None, (T.float64[:],), cc=TARGETS[0])
    except Exception as exc:  # NVRTC / NVVM libraries missing
        print(f"no CUDA compiler toolchain: {type(exc).__name__}: {str(exc)[:200]}")
        return 3
    missing = _launchable_kernels() - _compiled_names(cuda, T)
    if missing:
        print(f"kernels with no signature in tests/cuda/ptx_compile.py: {sorted(missing)}")
        return 1
    for cc in TARGETS:
        # Device functions compile for the current device's compute capability; there is
        # none here, so name the target's.
        dispatcher.get_current_device = lambda cc=cc: pytypes.SimpleNamespace(compute_capability=cc)
        count = _compile_all(cuda, T, cc)
        print(f"sm_{cc[0]}{cc[1]}: compiled {count} kernels to PTX")
    return 0


def _launchable_kernels() -> set[str]:
    """Names of every ``@cuda.jit`` kernel (not device function) defined in somvq's CUDA modules."""
    import ast
    from pathlib import Path

    import somvq._kernels

    names = set()
    for path in Path(somvq._kernels.__file__).parent.glob("cuda_*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef):
                for deco in node.decorator_list:
                    if isinstance(deco, ast.Attribute) and ast.unparse(deco) == "cuda.jit":
                        names.add(f"{path.stem}.{node.name}")
    return names


def _compiled_names(cuda, T) -> set[str]:
    """The kernels ``_compile_all`` covers (a dry run that records instead of compiling)."""
    seen = set()
    real = cuda.compile_ptx

    def record(func, signature, cc):
        seen.add(f"{func.__module__.rsplit('.', 1)[-1]}.{func.__name__}")
        return f".target sm_{cc[0]}{cc[1]}", None

    cuda.compile_ptx = record
    try:
        _compile_all(cuda, T, TARGETS[0])
    finally:
        cuda.compile_ptx = real
    return seen


def _compile_all(cuda, T, cc) -> int:

    from somvq._kernels import cuda_bmu, cuda_missing, cuda_online, cuda_smoothing, cuda_update

    def A(dtype, ndim, layout="A"):
        return T.Array(dtype, ndim, layout)

    f64, i64, b1 = T.float64, T.int64, T.boolean
    compiled = 0

    def check(kernel, signature):
        nonlocal compiled
        ptx, _ = cuda.compile_ptx(kernel.py_func, signature, cc=cc)
        assert f".target sm_{cc[0]}{cc[1]}" in ptx, (
            f"{kernel.py_func.__name__}: PTX not for sm_{cc[0]}{cc[1]}"
        )
        compiled += 1

    for name, dt in (("float32", T.float32), ("float64", T.float64)):
        # dense, missing="ignore" (masked) and layered masked builds (the dense finish below)
        for masked, layered in ((False, False), (True, False), (True, True)):
            check(
                cuda_bmu._build(16, 16, 32, name, masked, layered),
                (
                    A(dt, 2),
                    A(i64, 1),
                    A(dt, 2, "C"),
                    A(i64, 1, "C"),
                    A(f64, 1, "C"),
                    A(f64, 1, "C"),
                    A(i64, 1, "C"),
                    A(f64, 2, "C"),
                ),
            )
            if not masked:
                continue
            check(
                cuda_bmu._build_finish(masked, layered),
                (
                    A(dt, 2),
                    A(i64, 1),
                    A(dt, 2, "C"),
                    A(i64, 1, "C"),
                    A(f64, 1, "C"),
                    A(f64, 1, "C"),
                    f64,
                    f64,
                    A(f64, 1, "C"),
                    A(f64, 1, "C"),
                    A(f64, 2, "C"),
                    A(f64, 1, "C"),
                    b1,
                    A(i64, 1, "C"),
                    A(f64, 2, "C"),
                ),
            )
        check(
            cuda_bmu._build_layer_factors(),
            (A(dt, 2), A(i64, 1), A(i64, 1, "C"), A(f64, 1, "C"), A(f64, 2, "C")),
        )
        # missing="ignore" and layered online builds (the dense one below)
        for masked, layered in ((True, False), (True, True), (False, True)):
            check(
                cuda_online._build(256, masked, layered),
                (
                    A(dt, 2),
                    A(dt, 2, "C"),
                    A(i64, 1, "C"),
                    i64,
                    i64,
                    A(f64, 2, "C"),
                    i64,
                    i64,
                    A(f64, 1, "C"),
                    i64,
                    A(f64, 1, "C"),
                    A(f64, 1, "C"),
                    i64,
                    A(i64, 1, "C"),
                    A(f64, 1, "C"),
                    A(f64, 1, "C"),
                    A(f64, 2, "C"),
                ),
            )
        check(
            cuda_bmu._build_segmented_masked(),
            (
                A(dt, 2),
                A(i64, 1),
                A(i64, 1, "C"),
                A(i64, 1, "C"),
                A(i64, 1, "C"),
                A(f64, 1, "C"),
                A(f64, 2, "C"),
            ),
        )
        masked_kernels = cuda_missing._build(256)
        check(masked_kernels["batch"], (A(dt, 2, "C"), A(f64, 2, "C")))
        check(
            masked_kernels["ema_sum"],
            (A(f64, 2, "C"), A(f64, 2, "C"), A(dt, 2, "C"), A(f64, 2, "C"), f64, b1, A(T.int8, 1, "C")),
        )
        check(
            cuda_bmu._build_finish(),
            (
                A(dt, 2),
                A(i64, 1),
                A(dt, 2, "C"),
                A(i64, 1, "C"),
                A(f64, 1, "C"),
                A(f64, 1, "C"),
                f64,
                f64,
                A(f64, 1, "C"),
                A(f64, 1, "C"),
                A(f64, 2, "C"),
                A(f64, 1, "C"),
                b1,
                A(i64, 1, "C"),
                A(f64, 2, "C"),
            ),
        )
        histogram, offsets, starts, place, segmented, ordered = cuda_bmu._build_segmented(256)
        check(
            segmented,
            (
                A(dt, 2),
                A(i64, 1),
                A(i64, 1, "C"),
                A(i64, 1, "C"),
                A(i64, 1, "C"),
                A(f64, 1, "C"),
                A(f64, 2, "C"),
            ),
        )
        check(cuda_update._build(256, 256)["zero"], (A(i64, 2, "C"),))
        check(
            cuda_online._build(256),
            (
                A(dt, 2),
                A(dt, 2, "C"),
                A(i64, 1, "C"),
                i64,
                i64,
                A(f64, 2, "C"),
                i64,
                i64,
                A(f64, 1, "C"),
                i64,
                A(f64, 1, "C"),
                A(f64, 1, "C"),
                i64,
                A(i64, 1, "C"),
                A(f64, 1, "C"),
                A(f64, 1, "C"),
                A(f64, 2, "C"),
            ),
        )
        kernels = cuda_update._build(256, 256)
        check(kernels["batch"], (A(dt, 2, "C"), A(f64, 1, "C"), A(f64, 2, "C")))
        check(
            kernels["ema_sum"],
            (A(f64, 1, "C"), A(f64, 2, "C"), A(dt, 2, "C"), A(f64, 1, "C"), A(f64, 2, "C"), f64, b1),
        )
        check(kernels["cast"], (A(T.int32, 2), A(dt, 2, "C")))
        check(kernels["zero"], (A(dt, 2, "C"),))
        check(kernels["take"], (A(dt, 2, "C"), A(i64, 1, "C"), A(dt, 2, "C")))
        check(kernels["finite"], (A(dt, 2), A(i64, 1, "C")))
        check(kernels["moments"], (A(dt, 2), A(f64, 1, "C"), A(f64, 1, "C")))
        check(kernels["peaks"], (A(dt, 2), A(f64, 1, "C")))  # max |x| per block
    check(histogram, (A(i64, 1, "C"), i64, A(i64, 2, "C")))
    check(offsets, (A(i64, 2, "C"), A(i64, 1, "C")))
    check(starts, (A(i64, 1, "C"), A(i64, 1, "C")))
    check(place, (A(i64, 1, "C"), i64, A(i64, 2, "C"), A(i64, 1, "C"), A(i64, 1, "C")))
    check(ordered, (A(f64, 1, "C"), A(f64, 1, "C")))
    check(cuda_update._build(256, 256)["ema_count"], (A(f64, 1, "C"), A(f64, 1, "C"), f64, f64, b1))
    check(
        cuda_missing._build(256)["ema_count"],
        (A(f64, 2, "C"), A(f64, 2, "C"), f64, f64, b1, A(T.int8, 1, "C")),
    )
    matrix_kernel, smooth_kernel = cuda_smoothing._build(16)
    check(matrix_kernel, (A(f64, 2, "C"), i64, f64, f64, A(f64, 2, "C")))
    check(smooth_kernel, (A(f64, 2, "C"), A(f64, 1, "C"), A(f64, 2, "C"), A(f64, 1, "C"), A(f64, 2, "C")))
    return compiled


if __name__ == "__main__":
    sys.exit(main())
