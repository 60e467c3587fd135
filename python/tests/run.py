"""ctest entry point of the pytest suite: skips (exit 77) with its reason when pytest is missing."""
import os
import sys

SKIP = 77

try:
    import pytest
except ImportError:
    print(f"SKIPPED: pytest is not installed for {sys.executable} (python3-pytest)")
    sys.exit(SKIP)

sys.exit(pytest.main([os.path.dirname(os.path.abspath(__file__)), *sys.argv[1:]]))
