// A consumer's baseline main() calling the best compiled variant of dispatch_kernels.cpp.
#include <cmath>
#include <cstdio>
#include <cstring>

#include <qtx/dispatch.hpp>

namespace consumer {
using softmax_row_fn = const char*(float*, int);
QTX_DISPATCH_DECLARE(softmax_row_fn, softmax_row)
}  // namespace consumer

int main() {
  const auto& chosen = consumer::softmax_row_dispatch();
  float y[37];
  const char* backend = chosen.function(y, 37);
  float sum = 0;
  for (float v : y) sum += v;
  std::printf("dispatched to %s (backend %s), softmax sums to %.6f\n", qtx::to_string(chosen.level), backend, sum);
  return std::strcmp(backend, qtx::to_string(chosen.level)) == 0 && std::fabs(sum - 1.0f) < 1e-5f ? 0 : 1;
}
