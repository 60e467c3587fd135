#pragma once
// How a kernel test that sweeps the CPU backends skips one this CPU cannot run (with a visible
// warning, never silently).
#include <catch2/catch.hpp>

#include <qtx/core/arch.hpp>

namespace test_backends {

/// True (and a warning) when the CPU lacks Arch's instructions.
template <class Arch>
bool skip_unsupported() {
  if (qtx::cpu::supported<Arch>()) return false;
  WARN("CPU lacks " << Arch::name() << ": skipped");
  return true;
}

}  // namespace test_backends
