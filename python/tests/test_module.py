"""Module-level behaviour: errors, threads and the GIL, zero-copy interop, docstrings."""
import threading

import numpy as np
import pytest

import qtx
import qtx.epilogue


def test_qtx_error_is_value_error_with_the_message():
    x = np.zeros((2, 3), np.float32)
    with pytest.raises(ValueError, match=r"^softmax: zeta \(0.5\) must be finite and >= 1$"):
        qtx.softmax(x, zeta=0.5)
    with pytest.raises(ValueError, match="softmax: x is 2x3 but y is 2x4"):
        qtx.softmax(x, np.empty((2, 4), np.float32))
    with pytest.raises(ValueError, match="must be 1-D or 2-D"):
        qtx.softmax(np.zeros((2, 2, 2), np.float32))
    with pytest.raises(TypeError, match="softmax: x must be float32, got float64"):
        qtx.softmax(x.astype(np.float64))
    with pytest.raises(TypeError, match="must be a NumPy array"):
        qtx.softmax(x, [[0.0] * 3] * 2)


def test_overlapping_output_is_rejected():
    buf = np.zeros(8, np.float32)
    with pytest.raises(ValueError, match="overlaps"):
        qtx.gelu(buf[:6], buf[2:])


def test_threads_setting_and_gil_release(rng):
    qtx.set_num_threads(1)
    assert qtx.get_num_threads() == 1
    with pytest.raises(ValueError, match="set_num_threads"):
        qtx.set_num_threads(-1)
    x = rng.normal(size=(256, 512)).astype(np.float32)
    want = qtx.softmax(x)
    results = [None] * 4

    def work(i):
        results[i] = qtx.softmax(x)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for r in results:
        np.testing.assert_array_equal(r, want)
    qtx.set_num_threads(0)
    assert qtx.get_num_threads() >= 1  # back to OpenMP's default


def test_dlpack_and_array_interface_inputs_are_not_copied():
    class Exporter:
        """Shares an array's memory through __array__ only (as torch tensors do)."""

        def __init__(self, a):
            self.a = a

        def __array__(self, dtype=None):
            return self.a

    x = np.linspace(-1, 1, 12, dtype=np.float32).reshape(3, 4)
    out = np.zeros((3, 4), np.float32)
    qtx.softmax(Exporter(x), Exporter(out))  # the output is written through the exporter's memory
    np.testing.assert_allclose(out, qtx.softmax(x), rtol=1e-7)


def test_every_public_function_has_a_docstring():
    names = [n for n in dir(qtx) if not n.startswith("_")] + ["epilogue." + n for n in dir(qtx.epilogue)
                                                              if not n.startswith("_")]
    for name in names:
        obj = qtx
        for part in name.split("."):
            obj = getattr(obj, part)
        if callable(obj):
            assert obj.__doc__ and len(obj.__doc__.strip()) > 10, name
