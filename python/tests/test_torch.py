"""PyTorch CPU tensors in and out without copies (skipped, with the reason, when torch is missing)."""
import pytest

import qtx

torch = pytest.importorskip("torch", reason="PyTorch is not installed for this interpreter")


def test_tensors_are_read_and_written_in_place():
    x = torch.randn(4, 64)
    out = torch.empty(4, 64)
    qtx.softmax(x, out, gamma=-0.02)
    want = torch.clamp(torch.softmax(x.double(), -1) * 1.02 - 0.02, 0, 1)
    assert torch.allclose(out.double(), want, atol=1e-6)
    w = torch.randint(-128, 128, (16, 64), dtype=torch.int8)
    a = torch.randint(0, 256, (4, 64), dtype=torch.uint8)
    c = torch.empty(4, 16, dtype=torch.int32)
    qtx.gemm(a, qtx.pack_b(w.T), c)
    assert torch.equal(c.long(), a.long() @ w.T.long())
