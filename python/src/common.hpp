#pragma once
// What every binding source shares: the backend, element-type choice at run time, the thread
// setting and the GIL release around kernels.
#include <pybind11/pybind11.h>

#include <qtx/core/arch.hpp>
#include <qtx/core/parallel.hpp>

#include <atomic>
#include <string>

#include "arrays.hpp"

namespace qtx::python {

// The extension is compiled for the building machine (-march=native): the best backend its
// compiler flags allow. Run-time dispatch over several ISAs is a separate issue.
using arch = cpu::native;

// Element types an output can take, chosen at run time from `out` or a dtype argument.
enum class element { f32, s32, s8, u8 };

inline const char* element_name(element e) {
  switch (e) {
    case element::f32: return "float32";
    case element::s32: return "int32";
    case element::s8: return "int8";
    case element::u8: return "uint8";
  }
  return "?";
}

// The element type of numpy dtype-like `dtype` (numpy.uint8, "uint8", numpy.dtype(...)).
inline element element_of_dtype(py::handle dtype, const char* fn, const char* name) {
  const py::dtype d = py::dtype::from_args(py::reinterpret_borrow<py::object>(dtype));
  if (d.equal(py::dtype::of<float>())) return element::f32;
  if (d.equal(py::dtype::of<int32_t>())) return element::s32;
  if (d.equal(py::dtype::of<int8_t>())) return element::s8;
  if (d.equal(py::dtype::of<uint8_t>())) return element::u8;
  throw py::type_error(std::string(fn) + ": " + name + " must be float32, int32, int8 or uint8, got " +
                       std::string(py::str(static_cast<const py::handle&>(d))));
}

// The element type of the output: that of `out` when given (and then `dtype` must agree or be
// None), else `dtype`, else `fallback`.
inline element output_element(py::handle out, py::handle dtype, element fallback, const char* fn) {
  if (!out.is_none()) {
    const element e = element_of_dtype(to_array(out, fn, "out", true).dtype(), fn, "out");
    if (!dtype.is_none() && element_of_dtype(dtype, fn, "dtype") != e)
      throw py::type_error(std::string(fn) + ": dtype disagrees with out.dtype (" + element_name(e) + ")");
    return e;
  }
  return dtype.is_none() ? fallback : element_of_dtype(dtype, fn, "dtype");
}

// Thread count for the kernels, set from Python (0: OpenMP's default). Applied at each call,
// because OpenMP's setting belongs to the calling thread and Python may call from any thread.
inline std::atomic<int>& thread_setting() {
  static std::atomic<int> threads{0};
  return threads;
}

// Runs `kernel` without the GIL (other Python threads run meanwhile) on the chosen thread count.
// The arrays it reads stay alive: the caller's matrix_args hold them.
template <class Kernel>
void run_kernel(Kernel&& kernel) {
  py::gil_scoped_release no_gil;
  if (const int n = thread_setting().load(std::memory_order_relaxed); n > 0) set_num_threads(n);
  kernel();
}

void bind_gemm(py::module_& m);
void bind_rows(py::module_& m);
void bind_attention(py::module_& m);
void bind_stats(py::module_& m);
void bind_layers(py::module_& m);
void bind_io(py::module_& m);

}  // namespace qtx::python
