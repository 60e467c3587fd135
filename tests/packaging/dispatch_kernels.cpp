// A consumer's per-ISA source (qtx_add_dispatch): its entry point lives in the ISA-keyed namespace.
#include <qtx/qtx.hpp>

namespace consumer::QTX_ABI {

const char* softmax_row(float* y, int n) {
  float x[64];
  for (int i = 0; i < n; ++i) x[i] = 0.1f * float(i);
  qtx::ops::softmax(qtx::cpu::native{}, qtx::make_view(static_cast<const float*>(x), 1, n), qtx::make_view(y, 1, n));
  return qtx::cpu::native::name();
}

}  // namespace consumer::QTX_ABI
