"""qtx from Python: the kernels of quantizable transformers (clipped softmax, gated attention,
W8A8 integer GEMM) on NumPy arrays and PyTorch CPU tensors, without copies.

Every function checks its arguments: a wrong dtype or a non-array raises TypeError, a wrong shape
or parameter raises ValueError with qtx's message (naming the function, the argument and its value).
Kernels run without the GIL; set_num_threads() sets their thread count.
"""
from ._qtx import *  # noqa: F401,F403
from ._qtx import __version__  # noqa: F401
from ._qtx import epilogue  # noqa: F401  (qtx.epilogue: the GEMM stages)
from . import models  # noqa: F401  (qtx.models: BERT on the encoder layers)

import sys as _sys

_sys.modules[__name__ + ".epilogue"] = epilogue  # so that `import qtx.epilogue` works too
