"""ctest entry point of the pytest suite: skips (exit 77) with its reason when pytest is missing."""
import os
import sys

SKIP = 77

try:
    import pytest
except ImportError:
    print(f"SKIPPED: pytest is not installed for {sys.executable} (python3-pytest)")
    sys.exit(SKIP)

# -rs: every skipped test prints its reason (e.g. PyTorch missing) in the ctest log.
sys.exit(pytest.main([os.path.dirname(os.path.abspath(__file__)), "-rs", *sys.argv[1:]]))
