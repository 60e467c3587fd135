#pragma once
// NumPy arrays (and anything exporting DLPack or __array__, e.g. PyTorch CPU tensors) as qtx views,
// without copies: a view points at the array's own memory with its own strides.
//
// Every rule here throws with the name of the Python function the user called and the argument:
// TypeError for a wrong dtype or a non-array, ValueError (qtx::error) for shapes and strides.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <qtx/core/error.hpp>
#include <qtx/core/types.hpp>
#include <qtx/core/view.hpp>

#include <cstdint>
#include <string>
#include <type_traits>

namespace qtx::python {

namespace py = pybind11;

template <class T>
const char* dtype_name() {
  using U = std::remove_const_t<T>;
  if constexpr (std::is_same_v<U, float>) return "float32";
  else if constexpr (std::is_same_v<U, int32_t>) return "int32";
  else if constexpr (std::is_same_v<U, int8_t>) return "int8";
  else if constexpr (std::is_same_v<U, uint8_t>) return "uint8";
}

// An array object for `obj`, zero-copy: ndarrays as they are; DLPack exporters (read-only inputs)
// through numpy.from_dlpack; others through numpy.asarray (torch tensors: a view of their memory).
inline py::array to_array(py::handle obj, const char* fn, const char* name, bool writable) {
  if (py::isinstance<py::array>(obj)) return py::reinterpret_borrow<py::array>(obj);
  // An output must be memory the caller sees afterwards, not a fresh copy numpy made of a list.
  if (writable && !py::hasattr(obj, "__array__") && !py::hasattr(obj, "__array_interface__"))
    throw py::type_error(std::string(fn) + ": " + name + " must be a NumPy array or a tensor sharing its memory (got " +
                         std::string(py::str(py::type::of(obj))) + ")");
  py::module_ np = py::module_::import("numpy");
  py::object converted;
  try {
    converted = !writable && py::hasattr(obj, "__dlpack__") ? np.attr("from_dlpack")(obj) : np.attr("asarray")(obj);
  } catch (py::error_already_set& e) {
    throw py::type_error(std::string(fn) + ": " + name + " is not an array (" + e.what() + ")");
  }
  return py::reinterpret_borrow<py::array>(converted);
}

template <class T>
void check_dtype(const py::array& a, const char* fn, const char* name) {
  if (!py::array_t<std::remove_const_t<T>>::check_(a))
    throw py::type_error(std::string(fn) + ": " + name + " must be " + dtype_name<T>() + ", got " +
                         std::string(py::str(py::object(a.dtype()))));
}

// An array argument and its view; `array` keeps the memory alive while the kernel runs.
template <class T>
struct matrix_arg {
  py::array array;
  matrix_view<T> view;
};

// 1-D arrays are one row (1 × N); 2-D arrays keep their shape and strides. Strides must be
// non-negative multiples of the element size (numpy's views of reversed axes are rejected).
template <class T>
matrix_arg<T> as_matrix(py::handle obj, const char* fn, const char* name) {
  constexpr bool writable = !std::is_const_v<T>;
  py::array a = to_array(obj, fn, name, writable);
  check_dtype<T>(a, fn, name);
  check(a.ndim() == 1 || a.ndim() == 2, fn, ": ", name, " must be 1-D or 2-D, got ", a.ndim(), "-D");
  if (writable) check(a.writeable(), fn, ": ", name, " is read-only");
  const auto elem = static_cast<index_t>(sizeof(T));
  index_t extent[2], stride[2];
  const bool row = a.ndim() == 1;
  extent[0] = row ? 1 : a.shape(0);
  extent[1] = a.shape(a.ndim() - 1);
  stride[0] = row ? extent[1] : a.strides(0) / elem;
  stride[1] = a.strides(a.ndim() - 1) / elem;
  for (py::ssize_t d = 0; d < a.ndim(); ++d) {
    check(a.strides(d) >= 0 && a.strides(d) % elem == 0, fn, ": ", name, " has stride ", a.strides(d),
          " bytes on axis ", d, "; strides must be non-negative multiples of ", elem,
          " (make it contiguous with numpy.ascontiguousarray)");
  }
  T* data;
  if constexpr (writable)
    data = static_cast<T*>(a.mutable_data());
  else
    data = static_cast<T*>(a.data());
  return {std::move(a), matrix_view<T>(data, extent[0], extent[1], stride[0], stride[1])};
}

// A 1-D contiguous vector (weights, biases, per-channel scales).
template <class T>
struct vector_arg {
  py::array array;
  const T* data = nullptr;
  index_t size = 0;
};

template <class T>
vector_arg<T> as_vector(py::handle obj, const char* fn, const char* name) {
  py::array a = to_array(obj, fn, name, false);
  check_dtype<T>(a, fn, name);
  check(a.ndim() == 1, fn, ": ", name, " must be 1-D, got ", a.ndim(), "-D");
  check(a.shape(0) <= 1 || a.strides(0) == py::ssize_t(sizeof(T)), fn, ": ", name,
        " must be contiguous (stride ", a.strides(0), " bytes)");
  const auto* data = static_cast<const T*>(a.data());
  const index_t size = a.shape(0);
  return {std::move(a), data, size};
}

// The output argument: `out` when given (checked, written in place), else a new C-contiguous
// array of `rows` × `cols` (1-D when the input was 1-D).
template <class T>
matrix_arg<T> output_matrix(py::handle out, index_t rows, index_t cols, bool one_d, const char* fn,
                            const char* name = "out") {
  if (!out.is_none()) return as_matrix<T>(out, fn, name);
  py::array_t<T> a = one_d ? py::array_t<T>(py::ssize_t(cols)) : py::array_t<T>({py::ssize_t(rows), py::ssize_t(cols)});
  T* data = a.mutable_data();
  return {std::move(a), matrix_view<T>(data, rows, cols, cols, 1)};
}

}  // namespace qtx::python
