// Calibration observers (range estimators) and the paper's outlier statistics.
#include "intrinsics_first.hpp"

#include <qtx/quant/observers.hpp>
#include <qtx/quant/outlier_stats.hpp>

#include <string>

#include "common.hpp"

namespace qtx::python {
namespace {

using namespace pybind11::literals;

py::tuple range_tuple(value_range r) { return py::make_tuple(r.lo, r.hi); }

// The shared Python surface of an observer: observe, range, params, reset, empty.
template <class Observer, class Class>
void observer_methods(Class& c, const char* name) {
  const std::string observe_fn = std::string(name) + ".observe";
  c.def("observe", [observe_fn](Observer& o, py::handle x) {
         o.observe(as_matrix<const float>(x, observe_fn.c_str(), "x").view);
       }, "x"_a, "Adds the finite values of float32 x (1-D or 2-D, any strides) to the statistics.")
      .def("range", [](const Observer& o) { return range_tuple(o.range()); },
           "(lo, hi) to quantize over; ValueError before any finite value was observed.")
      .def("reset", &Observer::reset, "Forgets everything observed.")
      .def_property_readonly("empty", &Observer::empty, "True before any finite value was observed.");
}

// params(dtype): asymmetric uint8 (default) or symmetric int8 over the observer's range.
template <class Observer>
quant_params params_of(const Observer& o, py::handle dtype) {
  const element e = element_of_dtype(dtype, "params", "dtype");
  if (e == element::u8) return o.template params<uint8_t>();
  if (e == element::s8) return o.template params<int8_t>();
  throw py::type_error(std::string("params: dtype must be uint8 or int8, got ") + element_name(e));
}

template <class T>
void bind_mse(py::module_& m, const char* name) {
  py::class_<mse_observer<T>> c(m, name, "MSE range search for one 8-bit type; made by MseObserver(dtype).");
  observer_methods<mse_observer<T>>(c, "MseObserver");
  c.def("params", [](const mse_observer<T>& o) { return o.params(); }, "Parameters of the range found for its dtype.")
      .def("mean_squared_error", [](const mse_observer<T>& o, float lo, float hi) {
        return o.mean_squared_error({lo, hi});
      }, "lo"_a, "hi"_a, "Mean squared quantize -> dequantize error of the observed values over [lo, hi].")
      .def_property_readonly("count", &mse_observer<T>::count, "Finite values observed.");
}

}  // namespace

void bind_stats(py::module_& m) {
  py::class_<minmax_observer> minmax(m, "MinMaxObserver", "[min, max] of every finite value observed.");
  minmax.def(py::init<>());
  observer_methods<minmax_observer>(minmax, "MinMaxObserver");
  minmax.def("params", &params_of<minmax_observer>, "dtype"_a = py::str("uint8"),
             "Parameters over range(): asymmetric uint8 (default) or symmetric int8.");

  py::class_<running_minmax_observer> running(m, "RunningMinMaxObserver",
                                              "EMA over batches: lo <- m * lo + (1 - m) * batch_lo (same for hi).");
  running.def(py::init<double>(), "momentum"_a = running_minmax_observer::default_momentum);
  observer_methods<running_minmax_observer>(running, "RunningMinMaxObserver");
  running.def("params", &params_of<running_minmax_observer>, "dtype"_a = py::str("uint8"),
              "Parameters over range(): asymmetric uint8 (default) or symmetric int8.")
      .def_property_readonly("batches", &running_minmax_observer::batches, "Batches observed (one per observe call).")
      .def_property_readonly("momentum", &running_minmax_observer::momentum, "The EMA momentum m.");

  py::class_<percentile_observer> percentile(m, "PercentileObserver",
                                             "[P(100 - p), P(p)] of every finite value (numpy's 'linear' percentile).");
  percentile.def(py::init<double>(), "percentile"_a = percentile_observer::default_percentile);
  observer_methods<percentile_observer>(percentile, "PercentileObserver");
  percentile.def("params", &params_of<percentile_observer>, "dtype"_a = py::str("uint8"),
                 "Parameters over range(): asymmetric uint8 (default) or symmetric int8.")
      .def_property_readonly("count", &percentile_observer::count, "Finite values observed.");

  bind_mse<uint8_t>(m, "MseObserverUint8");
  bind_mse<int8_t>(m, "MseObserverInt8");
  m.def("MseObserver", [](py::handle dtype, int candidates) -> py::object {
          const element e = element_of_dtype(dtype, "MseObserver", "dtype");
          if (e == element::u8) return py::cast(mse_observer<uint8_t>(candidates));
          if (e == element::s8) return py::cast(mse_observer<int8_t>(candidates));
          throw py::type_error(std::string("MseObserver: dtype must be uint8 or int8, got ") + element_name(e));
        }, "dtype"_a = py::str("uint8"), "candidates"_a = mse_observer<uint8_t>::default_candidates,
        "The range among `candidates` shrunk ones that minimises the quantization MSE of dtype.");

  m.def("inf_norm", [](py::handle x) { return inf_norm(as_matrix<const float>(x, "inf_norm", "x").view); }, "x"_a,
        "max |x| of float32 x (NaN if any value is NaN).");
  m.def("kurtosis", [](py::handle x) { return kurtosis(as_matrix<const float>(x, "kurtosis", "x").view); }, "x"_a,
        "mean((x - mu)^4) / (sigma^4 + 1e-6) with the unbiased sigma (not the excess kurtosis; Gaussian ~ 3).");
  py::class_<outlier_stats>(m, "OutlierStats", "Inf-norm and kurtosis per sequence, averaged over sequences.")
      .def(py::init<>())
      .def("add_sequence", [](outlier_stats& s, py::handle x) {
             s.add_sequence(as_matrix<const float>(x, "OutlierStats.add_sequence", "x").view);
           }, "x"_a, "Adds one sequence (a float32 T x d matrix or a vector).")
      .def("merge", &outlier_stats::merge, "other"_a, "Folds in another accumulator.")
      .def("reset", &outlier_stats::reset, "Forgets every sequence.")
      .def_property_readonly("count", &outlier_stats::count, "Sequences added.")
      .def_property_readonly("mean_inf_norm", &outlier_stats::mean_inf_norm, "Mean inf-norm over sequences.")
      .def_property_readonly("mean_kurtosis", &outlier_stats::mean_kurtosis, "Mean kurtosis over sequences.")
      .def_property_readonly("max_inf_norm", &outlier_stats::max_inf_norm, "Largest inf-norm of any sequence.");
}

}  // namespace qtx::python
