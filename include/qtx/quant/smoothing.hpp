#pragma once
/// @file
/// SmoothQuant-style difficulty migration (Xiao et al., 2023): a GEMM input x whose few channels
/// carry outliers is divided by per-channel factors s_j and the weights that read it are multiplied
/// by them, x·W = (x ⊙ s⁻¹)·(diag(s)·W): the product is unchanged in real arithmetic, but x's
/// channels become alike (easy to quantize per tensor) while W takes on part of the spread (int8
/// weights are per output channel and tolerate it). With α the migration strength,
///
///   s_j = max|x_j|^α / max|W_j|^(1−α)      (W_j: every weight that reads input channel j)
///
/// computed from calibration statistics: channel_minmax_observer records each input channel's range.
#include <algorithm>
#include <cmath>
#include <initializer_list>
#include <span>
#include <vector>

#include "../core/error.hpp"
#include "../core/view.hpp"
#include "params.hpp"
#include "../config.hpp"

namespace qtx::QTX_ABI {

/// Per-channel (column) ranges of a calibrated tensor.
struct channel_range {
  std::vector<float> lo;  ///< per channel: the lowest finite value observed (≤ 0 after observe: 0 included)
  std::vector<float> hi;  ///< per channel: the highest finite value observed (≥ 0)

  /// Number of channels.
  index_t channels() const { return index_t(lo.size()); }
  /// max |x_j| of channel j.
  float absmax(index_t j) const { return std::max(-lo[std::size_t(j)], hi[std::size_t(j)]); }
};

/// [min, max] of every column over everything observed (finite values only; the range of a channel
/// always contains 0, as the uint8 parameters built from it must).
class channel_minmax_observer {
 public:
  /// Widens each column's range by x's. @throws qtx::error for an invalid view or a column count
  /// that differs from the first observed tensor's.
  void observe(matrix_view<const float> x) {
    check_view("channel_minmax_observer::observe", "x", x);
    if (range_.lo.empty()) {
      range_.lo.assign(std::size_t(x.cols), 0.0f);
      range_.hi.assign(std::size_t(x.cols), 0.0f);
    }
    check(x.cols == range_.channels(), "channel_minmax_observer::observe: x has ", x.cols,
          " columns, the observed tensor had ", range_.channels());
    for (index_t r = 0; r < x.rows; ++r)
      for (index_t c = 0; c < x.cols; ++c) {
        const float v = x(r, c);
        if (!std::isfinite(v)) continue;
        range_.lo[std::size_t(c)] = std::min(range_.lo[std::size_t(c)], v);
        range_.hi[std::size_t(c)] = std::max(range_.hi[std::size_t(c)], v);
      }
    observed_ = true;
  }
  /// True until a tensor was observed.
  bool empty() const { return !observed_; }
  /// The per-channel ranges (empty vectors before any tensor).
  const channel_range& range() const { return range_; }

 private:
  channel_range range_;
  bool observed_ = false;
};

/// The migration factors s_j = a_j^α / w_j^(1−α) of the file comment; a channel that is all zero in
/// x or in the weights keeps s_j = 1 (nothing to migrate). Factors are clamped to [1e−5, 1e5].
/// @param fn the public function named by errors.
/// @throws qtx::error for α outside [0, 1], sizes that differ, or a negative / non-finite statistic.
inline std::vector<float> smoothing_factors(std::span<const float> activation_absmax,
                                            std::span<const float> weight_absmax, float alpha,
                                            const char* fn = "smoothing_factors") {
  check(alpha >= 0.0f && alpha <= 1.0f, fn, ": smoothing alpha (", alpha, ") must be in [0, 1]");
  check(activation_absmax.size() == weight_absmax.size(), fn, ": ", activation_absmax.size(),
        " activation channels but ", weight_absmax.size(), " weight input channels");
  std::vector<float> s(activation_absmax.size(), 1.0f);
  for (std::size_t j = 0; j < s.size(); ++j) {
    const float a = activation_absmax[j], w = weight_absmax[j];
    check(std::isfinite(a) && a >= 0.0f, fn, ": activation absmax[", j, "] (", a, ") must be finite and >= 0");
    check(std::isfinite(w) && w >= 0.0f, fn, ": weight absmax[", j, "] (", w, ") must be finite and >= 0");
    if (a == 0.0f || w == 0.0f) continue;
    const double f = std::pow(double(a), double(alpha)) / std::pow(double(w), 1.0 - double(alpha));
    s[j] = float(std::clamp(f, 1e-5, 1e5));
  }
  return s;
}

/// The uint8 parameters of x ⊙ s⁻¹ given x's per-channel ranges: the union of [lo_j / s_j, hi_j / s_j].
/// @throws qtx::error ("smoothed_params: ...") when the sizes differ.
inline quant_params smoothed_params(const channel_range& x, std::span<const float> s) {
  check(x.channels() == index_t(s.size()), "smoothed_params: ", x.channels(), " channels but ", s.size(),
        " factors");
  float lo = 0.0f, hi = 0.0f;
  for (std::size_t j = 0; j < s.size(); ++j) {
    lo = std::min(lo, x.lo[j] / s[j]);
    hi = std::max(hi, x.hi[j] / s[j]);
  }
  return asymmetric_params<uint8_t>(lo, hi);
}

/// max_n |W(n, j)| over the rows of every weight (each (out, in), Hugging Face layout): the weight
/// statistic of input channel j when several weights read the same input (Q, K and V).
/// @throws qtx::error ("smoothing: ...") when the weights' input widths differ.
inline std::vector<float> input_channel_absmax(std::initializer_list<matrix_view<const float>> weights) {
  std::vector<float> absmax;
  for (const auto& w : weights) {
    if (absmax.empty()) absmax.assign(std::size_t(w.cols), 0.0f);
    check(index_t(absmax.size()) == w.cols, "smoothing: weights read ", absmax.size(), " and ", w.cols,
          " input channels");
    for (index_t n = 0; n < w.rows; ++n)
      for (index_t j = 0; j < w.cols; ++j) absmax[std::size_t(j)] = std::max(absmax[std::size_t(j)], std::abs(w(n, j)));
  }
  return absmax;
}

/// W·diag(s) of a weight W (out, in): input column j times s_j, as a dense row-major copy.
inline std::vector<float> scale_input_channels(matrix_view<const float> w, std::span<const float> s) {
  std::vector<float> out(std::size_t(w.rows * w.cols));
  for (index_t n = 0; n < w.rows; ++n)
    for (index_t j = 0; j < w.cols; ++j) out[std::size_t(n * w.cols + j)] = w(n, j) * s[std::size_t(j)];
  return out;
}

}  // namespace qtx
