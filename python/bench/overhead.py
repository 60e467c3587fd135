"""Per-call overhead of qtx.softmax on a 1 x 128 row from Python vs the same C++ call.

Run: PYTHONPATH=<build>/python python3 python/bench/overhead.py
Prints the median seconds per call of each (7 repeats x 20000 calls) and the difference.
"""
import statistics
import time

import numpy as np

import qtx
from qtx import _qtx

CALLS, REPEATS = 20000, 7


def per_call(fn):
    runs = []
    for _ in range(REPEATS):
        start = time.perf_counter()
        for _ in range(CALLS):
            fn()
        runs.append((time.perf_counter() - start) / CALLS)
    return statistics.median(runs)


def main():
    qtx.set_num_threads(1)
    x = np.random.default_rng(0).normal(size=(1, 128)).astype(np.float32)
    out = np.empty_like(x)
    cpp = _qtx._time_cpp_softmax(x, out, CALLS, REPEATS)
    with_out = per_call(lambda: qtx.softmax(x, out))
    new_array = per_call(lambda: qtx.softmax(x))
    clipped = per_call(lambda: qtx.softmax(x, out, gamma=-0.02))
    print(f"backend {qtx.backend()}, 1 thread, 1x128 float32")
    print(f"C++ ops::softmax                 {cpp * 1e6:7.3f} us")
    for name, t in [("qtx.softmax(x, out)", with_out), ("qtx.softmax(x) (new array)", new_array),
                    ("qtx.softmax(x, out, gamma=..)", clipped)]:
        print(f"{name:32s} {t * 1e6:7.3f} us   overhead {(t - cpp) * 1e6:6.3f} us")


if __name__ == "__main__":
    main()
