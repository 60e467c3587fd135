// Compiled once per ISA by qtx_add_dispatch (tests/CMakeLists.txt): each variant runs qtx's
// kernels with the backend its flags give (cpu::native) and says which ISA key it was built under.
#include "probe.hpp"

#include <qtx/qtx.hpp>

namespace dispatch_probe::QTX_ABI {

report run(const problem& p) {
  using arch = qtx::cpu::native;
  qtx::ops::gemm(arch{}, qtx::make_view(p.a, p.m, p.k), qtx::make_view(p.b, p.k, p.n), qtx::make_view(p.c, p.m, p.n),
                 qtx::epilogue::pipeline<>{}, p.a_zero_point);
  const auto x = qtx::make_view(p.x, p.rows, p.cols);
  qtx::ops::softmax(arch{}, x, qtx::make_view(p.softmax, p.rows, p.cols));
  qtx::ops::layer_norm(arch{}, x, {p.ln_weight, std::size_t(p.cols)}, {p.ln_bias, std::size_t(p.cols)},
                       qtx::make_view(p.layer_norm, p.rows, p.cols));
  return {qtx::cpu::abi_name(), arch::name()};
}

}  // namespace dispatch_probe::QTX_ABI
