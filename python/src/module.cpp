// qtx._qtx: the extension module. Each bind_*.cpp adds one family of operations.
#include "intrinsics_first.hpp"

#include <qtx/version.hpp>

#include <algorithm>
#include <chrono>
#include <string>
#include <vector>

#include <qtx/ops/softmax.hpp>

#include "common.hpp"

namespace qtx::python {
namespace {

using namespace pybind11::literals;

// Seconds per call of ops::softmax on x -> out from C++ (median of `repeats` runs of `calls`
// calls): the baseline of the per-call overhead measurement (python/bench/overhead.py).
double time_cpp_softmax(py::handle x_obj, py::handle out_obj, int calls, int repeats) {
  const auto x = as_matrix<const float>(x_obj, "_time_cpp_softmax", "x");
  const auto y = as_matrix<float>(out_obj, "_time_cpp_softmax", "out");
  std::vector<double> runs;
  for (int r = 0; r < repeats; ++r) {
    const auto start = std::chrono::steady_clock::now();
    for (int i = 0; i < calls; ++i) ops::softmax(arch{}, x.view, y.view);
    runs.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() / calls);
  }
  std::sort(runs.begin(), runs.end());
  return runs[runs.size() / 2];
}

}  // namespace
}  // namespace qtx::python

PYBIND11_MODULE(_qtx, m) {
  namespace qp = qtx::python;
  using namespace pybind11::literals;
  m.doc() = "qtx kernels (clipped softmax, gated attention, W8A8 GEMM) on NumPy arrays and PyTorch CPU tensors.";
  m.attr("__version__") = std::to_string(QTX_VERSION_MAJOR) + "." + std::to_string(QTX_VERSION_MINOR) + "." +
                          std::to_string(QTX_VERSION_PATCH);
  m.def("backend", [] { return qp::arch::name(); },
        "The CPU backend this module was compiled for (scalar, avx2 or avx512_vnni).");
  m.def("set_num_threads", [](int n) {
          qtx::check(n >= 0, "set_num_threads: n (", n, ") must be non-negative (0: OpenMP's default)");
          qp::thread_setting() = n;
        }, "n"_a, "Threads the kernels use from now on, from every Python thread (0: OpenMP's default).");
  m.def("get_num_threads", [] {
          const int n = qp::thread_setting().load();
          return n > 0 ? n : qtx::max_threads();
        }, "Threads the kernels use.");
  m.def("amx_enabled", [] { return std::is_same_v<qp::arch, qtx::cpu::avx512_vnni> && qtx::amx_enabled(); },
        "Whether int8 GEMMs run on AMX tiles (avx512_vnni backend on a CPU with AMX-INT8).");
  m.def("set_amx_enabled", [](bool on) {
          return std::is_same_v<qp::arch, qtx::cpu::avx512_vnni> && qtx::set_amx_enabled(on);
        }, "on"_a, "Turns AMX on (where supported) or off for later int8 GEMMs; returns whether it is now in use. "
        "Results are the same bits either way.");
  m.def("_time_cpp_softmax", &qp::time_cpp_softmax, "x"_a, "out"_a, "calls"_a = 10000, "repeats"_a = 7,
        "Seconds per C++ call of softmax(x, out) (median of repeats), for the overhead benchmark.");
  qp::bind_rows(m);
  qp::bind_gemm(m);
  qp::bind_attention(m);
  qp::bind_stats(m);
  qp::bind_layers(m);
#ifdef QTX_PYTHON_IO
  qp::bind_io(m);
#endif
}
