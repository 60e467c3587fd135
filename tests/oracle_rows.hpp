#pragma once
// Float64 oracles of the row kernels, written from their formulas alone: they share no code with
// ref/softmax.hpp and ref/layernorm.hpp (which are also the scalar backend), so every backend and
// ref/ itself can be tested against them. Every step runs in double; the only float step is the
// one the API defines: the residual sum s = x + r is a float (it is what add_layer_norm writes out).
#include <qtx/core/arch.hpp>

#include "backends.hpp"
#include <qtx/core/types.hpp>
#include <qtx/ref/softmax.hpp>  // softmax_params and softmax_visible_columns: the parameters, not the kernel

#include <algorithm>
#include <cmath>
#include <limits>
#include <tuple>
#include <type_traits>
#include <vector>

namespace oracle {
using qtx::index_t;

// ref/ as one more implementation under test, beside the backend tags.
struct reference {
  static constexpr bool compiled = true;
  static constexpr const char* name() noexcept { return "ref"; }
};
// The backends this build compiled (tests/backends.hpp), then ref/.
using implementations =
    test_backends::compiled<std::tuple<qtx::cpu::scalar, qtx::cpu::avx2, qtx::cpu::avx512_vnni, reference>>;

template <class Impl>
bool runs_here() {
  if constexpr (std::is_same_v<Impl, reference>)
    return true;
  else
    return qtx::cpu::supported<Impl>();
}

struct softmax_row {
  std::vector<double> y;  // clip((ζ − γ)·p + γ, 0, 1); 0 where hidden or −inf
  std::vector<double> z;  // input_scale·x + mask, −inf where hidden
  double z_max = -std::numeric_limits<double>::infinity();
};

// Row i of y = clip((ζ − γ)·softmax(input_scale·x + mask) + γ, 0, 1); mask: nullptr or the row's C values.
template <class In>
softmax_row softmax(const In* x, index_t cols, index_t row, const qtx::softmax_params& p, const float* mask) {
  softmax_row out{std::vector<double>(std::size_t(cols), 0.0),
                  std::vector<double>(std::size_t(cols), -std::numeric_limits<double>::infinity())};
  const index_t visible = qtx::softmax_visible_columns(p, row, cols);
  for (index_t j = 0; j < visible; ++j) {
    out.z[j] = double(p.input_scale) * double(x[j]) + (mask ? double(mask[j]) : 0.0);
    out.z_max = std::max(out.z_max, out.z[j]);
  }
  if (std::isinf(out.z_max)) return out;  // nothing visible, or all −inf: a zero row
  double sum = 0.0;
  for (index_t j = 0; j < visible; ++j) sum += std::exp(out.z[j] - out.z_max);
  for (index_t j = 0; j < visible; ++j) {
    const double prob = std::exp(out.z[j] - out.z_max) / sum;
    out.y[j] = std::clamp((double(p.zeta) - double(p.gamma)) * prob + double(p.gamma), 0.0, 1.0);
  }
  return out;
}

// y = (s − μ)/√(σ² + eps)·w + b over one row, population variance; s = float(x + r) when r is given.
inline std::vector<double> layer_norm(const float* x, const float* r, const float* w, const float* b, index_t n,
                                      float eps, std::vector<double>* normalized = nullptr) {
  std::vector<double> s(static_cast<std::size_t>(n)), y(static_cast<std::size_t>(n));
  for (index_t j = 0; j < n; ++j) s[j] = r ? double(x[j] + r[j]) : double(x[j]);
  double mean = 0.0, var = 0.0;
  for (double v : s) mean += v;
  mean /= double(n);
  for (double v : s) var += (v - mean) * (v - mean);
  var /= double(n);
  const double rstd = 1.0 / std::sqrt(var + double(eps));
  if (normalized) normalized->assign(std::size_t(n), 0.0);
  for (index_t j = 0; j < n; ++j) {
    const double hat = (s[j] - mean) * rstd;
    if (normalized) (*normalized)[j] = hat;
    y[j] = hat * double(w[j]) + double(b[j]);
  }
  return y;
}

}  // namespace oracle
