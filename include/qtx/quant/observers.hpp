#pragma once
/// @file
/// Range observers: calibration statistics that turn the values a tensor takes into quantization
/// parameters (the paper's range estimators).
///
///   minmax_observer          [min, max] over everything observed
///   running_minmax_observer  EMA over batches: lo ← m·lo + (1−m)·batch_lo (same for hi), m = 0.9
///   percentile_observer      [P(100−p), P(p)] over everything observed, p = 99.999, linear
///                            interpolation between order statistics (numpy's default)
///   mse_observer<T>          the range among 100 shrunk candidates that minimises the mean squared
///                            quantize → dequantize error of T over everything observed
///
/// Every observer takes batches through observe(span) or observe(matrix_view) (any strides), and
/// answers range() → {lo, hi} and params<T>() → quant_params (range_params below: asymmetric
/// uint8 or symmetric int8, the paper's W8A8 scheme). range()/params() before any finite value was
/// observed throw qtx::error.
///
/// Non-finite values (NaN, ±inf) are ignored by every observer: they carry no information about the
/// range a quantizer should cover, and quantize_one maps NaN to the zero point and saturates ±inf
/// whatever the range. A batch without finite values is no batch at all (the EMA does not move).
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <optional>
#include <span>
#include <type_traits>
#include <vector>

#include "../core/error.hpp"
#include "../core/types.hpp"
#include "../core/view.hpp"
#include "params.hpp"
#include "quantize.hpp"
#include "../config.hpp"

namespace qtx::QTX_ABI {

/// A closed interval [lo, hi] of observed values: what an observer estimates, before it becomes quant_params.
struct value_range {
  /// Lower end.
  float lo = 0.0f;
  /// Upper end.
  float hi = 0.0f;
};

/// The paper's parameters for T over r: symmetric (scale = max(|lo|, |hi|) / qmax, zero point 0) for
/// a signed T, asymmetric over r widened to include 0 for an unsigned T.
template <class T>
quant_params range_params(value_range r) {
  if constexpr (element_traits<T>::min < 0) {
    return symmetric_params<T>(std::max(std::abs(r.lo), std::abs(r.hi)));
  } else {
    return asymmetric_params<T>(r.lo, r.hi);
  }
}

namespace detail {

inline bool is_finite_value(float x) { return std::abs(x) <= std::numeric_limits<float>::max(); }

// The empty range {+inf, −inf}: the identity of merge().
inline value_range empty_range() {
  return {std::numeric_limits<float>::infinity(), -std::numeric_limits<float>::infinity()};
}
inline bool is_empty(value_range r) { return !(r.lo <= r.hi); }
inline value_range merge(value_range a, value_range b) {
  return {std::min(a.lo, b.lo), std::max(a.hi, b.hi)};
}

// Min and max of the finite values of x (empty_range() when there are none), in one pass.
// Independent lanes (no reassociation of a reduction) let the compiler vectorize the loop
// without -ffast-math; lane count = one AVX-512 register of floats.
inline value_range finite_minmax(std::span<const float> x) {
  constexpr std::size_t lanes = 16;
  constexpr float inf = std::numeric_limits<float>::infinity();
  float lo[lanes], hi[lanes];
  std::fill_n(lo, lanes, inf);
  std::fill_n(hi, lanes, -inf);
  const std::size_t n = x.size();
  const std::size_t whole = n - n % lanes;
  for (std::size_t i = 0; i < whole; i += lanes) {
    for (std::size_t l = 0; l < lanes; ++l) {
      // Non-finite values become the identities ±inf: selects, never branches.
      const float v = x[i + l];
      const bool finite = is_finite_value(v);
      const float for_lo = finite ? v : inf;
      const float for_hi = finite ? v : -inf;
      lo[l] = for_lo < lo[l] ? for_lo : lo[l];
      hi[l] = for_hi > hi[l] ? for_hi : hi[l];
    }
  }
  value_range r = empty_range();
  for (std::size_t l = 0; l < lanes; ++l) r = merge(r, {lo[l], hi[l]});
  for (std::size_t i = whole; i < n; ++i)
    if (is_finite_value(x[i])) r = merge(r, {x[i], x[i]});
  return r;
}

// Calls f(std::span<const float>) once per row; rows with a column stride are gathered first.
template <class F>
void for_each_row(const char* fn, matrix_view<const float> x, F&& f) {
  check_view(fn, "x", x);
  if (x.empty()) return;
  std::vector<float> gathered;
  for (index_t r = 0; r < x.rows; ++r) {
    if (x.row_contiguous()) {
      f(std::span<const float>(x.row(r), static_cast<std::size_t>(x.cols)));
    } else {
      gathered.resize(static_cast<std::size_t>(x.cols));
      for (index_t c = 0; c < x.cols; ++c) gathered[c] = x(r, c);
      f(std::span<const float>(gathered));
    }
  }
}

inline value_range finite_minmax(const char* fn, matrix_view<const float> x) {
  value_range r = empty_range();
  for_each_row(fn, x, [&](std::span<const float> row) { r = merge(r, finite_minmax(row)); });
  return r;
}

inline void check_observed(const char* fn, bool observed) {
  check(observed, fn, ": nothing observed yet (no finite values); call observe() first");
}

// Every finite value observed so far, for the observers that need the whole distribution.
class finite_sample {
 public:
  void append(std::span<const float> x) {
    for (float v : x)
      if (is_finite_value(v)) values_.push_back(v);
  }
  void append(const char* fn, matrix_view<const float> x) {
    for_each_row(fn, x, [&](std::span<const float> row) { append(row); });
  }
  void clear() { values_.clear(); }
  std::size_t size() const { return values_.size(); }
  std::vector<float>& values() { return values_; }
  const std::vector<float>& values() const { return values_; }

 private:
  std::vector<float> values_;
};

}  // namespace detail

/// params<T>() for every observer: the paper's parameters of T over the observer's range().
template <class Derived>
class range_observer_params {
 public:
  /// Quantization parameters of T over range(): asymmetric for uint8, symmetric for int8.
  /// @throws qtx::error when nothing finite was observed.
  template <class T = uint8_t>
  quant_params params() const {
    return range_params<T>(static_cast<const Derived&>(*this).range());
  }
};

/// [min, max] over everything observed: the tightest range that clips nothing (outliers included).
class minmax_observer : public range_observer_params<minmax_observer> {
 public:
  /// Widens the range to cover x's finite values.
  void observe(std::span<const float> x) {
    range_ = detail::merge(range_, detail::finite_minmax(x));
  }
  /// Widens the range to cover x's finite values (any strides). @throws qtx::error for an invalid view.
  void observe(matrix_view<const float> x) {
    range_ = detail::merge(range_, detail::finite_minmax("minmax_observer::observe", x));
  }
  /// Forgets everything observed.
  void reset() { range_ = detail::empty_range(); }
  /// True until a finite value was observed (range() would throw).
  bool empty() const { return detail::is_empty(range_); }

  /// The observed [min, max]. @throws qtx::error when nothing finite was observed.
  value_range range() const {
    detail::check_observed("minmax_observer::range", !empty());
    return range_;
  }

 private:
  value_range range_ = detail::empty_range();
};

/// The paper's running min-max: the first batch sets the range, each later batch moves it by
/// lo ← m·lo + (1−m)·batch_lo and hi ← m·hi + (1−m)·batch_hi. One observe() call is one batch.
/// The state is kept in double so that many batches do not accumulate float rounding.
class running_minmax_observer : public range_observer_params<running_minmax_observer> {
 public:
  /// The paper's EMA momentum.
  static constexpr double default_momentum = 0.9;

  /// @param momentum weight of the old range per batch, in [0, 1] (1 = first batch only).
  /// @throws qtx::error for a momentum outside [0, 1].
  explicit running_minmax_observer(double momentum = default_momentum) : momentum_(momentum) {
    check(momentum >= 0.0 && momentum <= 1.0, "running_minmax_observer: momentum (", momentum,
          ") must be in [0, 1]");
  }

  /// Folds x in as one batch.
  void observe(std::span<const float> x) { add_batch(detail::finite_minmax(x)); }
  /// Folds x in as one batch (any strides). @throws qtx::error for an invalid view.
  void observe(matrix_view<const float> x) {
    add_batch(detail::finite_minmax("running_minmax_observer::observe", x));
  }
  /// Forgets everything observed.
  void reset() { batches_ = 0; }
  /// True until a batch with a finite value was observed.
  bool empty() const { return batches_ == 0; }
  /// Number of batches folded in (batches without finite values do not count).
  std::size_t batches() const { return batches_; }
  /// The EMA momentum given at construction.
  double momentum() const { return momentum_; }

  /// The running range. @throws qtx::error when nothing finite was observed.
  value_range range() const {
    detail::check_observed("running_minmax_observer::range", !empty());
    return {static_cast<float>(lo_), static_cast<float>(hi_)};
  }

 private:
  void add_batch(value_range batch) {
    if (detail::is_empty(batch)) return;
    if (batches_ == 0) {
      lo_ = batch.lo;
      hi_ = batch.hi;
    } else {
      lo_ = momentum_ * lo_ + (1.0 - momentum_) * batch.lo;
      hi_ = momentum_ * hi_ + (1.0 - momentum_) * batch.hi;
    }
    ++batches_;
  }

  double momentum_;
  double lo_ = 0.0;
  double hi_ = 0.0;
  std::size_t batches_ = 0;
};

/// [P(100 − p), P(p)] of every finite value observed. P(q) is numpy's default ('linear'): with the
/// n values sorted as a[0..n), h = (n − 1)·q/100, P = a[⌊h⌋] + (h − ⌊h⌋)·(a[⌊h⌋+1] − a[⌊h⌋]),
/// evaluated in double. Keeps every finite value (4 bytes each); range() selects the two order
/// statistics it needs in O(n) and reorders (never changes) the stored values, so concurrent
/// range() calls on one observer are not safe.
class percentile_observer : public range_observer_params<percentile_observer> {
 public:
  /// The paper's percentile.
  static constexpr double default_percentile = 99.999;

  /// @param percentile p in [50, 100]: the range is [P(100 − p), P(p)].
  /// @throws qtx::error for p outside [50, 100].
  explicit percentile_observer(double percentile = default_percentile) : percentile_(percentile) {
    check(percentile >= 50.0 && percentile <= 100.0, "percentile_observer: percentile (",
          percentile, ") must be in [50, 100]");
  }

  /// Keeps x's finite values.
  void observe(std::span<const float> x) { sample_.append(x); }
  /// Keeps x's finite values (any strides). @throws qtx::error for an invalid view.
  void observe(matrix_view<const float> x) { sample_.append("percentile_observer::observe", x); }
  /// Forgets everything observed.
  void reset() { sample_.clear(); }
  /// True until a finite value was observed.
  bool empty() const { return sample_.size() == 0; }
  /// Number of finite values kept (memory: 4 bytes each).
  std::size_t count() const { return sample_.size(); }
  /// The percentile given at construction.
  double percentile() const { return percentile_; }

  /// [P(100 − p), P(p)] of the values kept. @throws qtx::error when nothing finite was observed.
  value_range range() const {
    detail::check_observed("percentile_observer::range", !empty());
    return {quantile(100.0 - percentile_), quantile(percentile_)};
  }

 private:
  /// Linear interpolation between the order statistics around h = (n − 1)·percent/100.
  float quantile(double percent) const {
    std::vector<float>& a = sample_.values();
    const std::size_t n = a.size();
    const double h = static_cast<double>(n - 1) * percent / 100.0;
    const std::size_t below = std::min(static_cast<std::size_t>(std::floor(h)), n - 1);
    std::nth_element(a.begin(), a.begin() + below, a.end());
    const double a_below = a[below];
    if (below + 1 == n) return static_cast<float>(a_below);
    // After nth_element everything past `below` is ≥ a[below]: the next order statistic is their
    // min.
    const double a_above = *std::min_element(a.begin() + below + 1, a.end());
    return static_cast<float>(a_below + (h - static_cast<double>(below)) * (a_above - a_below));
  }

  double percentile_;
  mutable detail::finite_sample sample_;
};

/// Grid search over `candidates` (default 100) ranges for the one whose T-quantization loses least:
/// with [lo, hi] the observed min/max widened to include 0, candidate i = 1..N is
///   unsigned T (asymmetric):  [lo·i/N, hi·i/N]
///   signed T (symmetric):     [−a·i/N, a·i/N],  a = max(|lo|, |hi|)
/// scored by mean((x − dequantize(quantize(x)))²) over every finite value observed, with exactly the
/// parameters range_params<T> gives and quantize_one / dequantize_one. Ties go to the wider range
/// (less clipping). Asymmetric candidates shrink both ends by the same factor (a 1-D search; the
/// paper's code adds an integer skew search on top). Keeps every finite value observed; range()
/// costs N passes over them and is cached until the next observe()/reset().
template <class T = uint8_t>
class mse_observer {
  static_assert(element_traits<T>::is_quantized, "mse_observer<T>: T must be int8_t or uint8_t");

 public:
  /// Number of shrunk ranges searched, as in the paper's code.
  static constexpr int default_candidates = 100;

  /// @param candidates number of shrunk ranges to search (≥ 1). @throws qtx::error for fewer than 1.
  explicit mse_observer(int candidates = default_candidates) : candidates_(candidates) {
    check(candidates >= 1, "mse_observer: candidates (", candidates, ") must be at least 1");
  }

  /// Keeps x's finite values (and drops the cached range).
  void observe(std::span<const float> x) {
    sample_.append(x);
    best_.reset();
  }
  /// Keeps x's finite values, any strides (and drops the cached range). @throws qtx::error for an invalid view.
  void observe(matrix_view<const float> x) {
    sample_.append("mse_observer::observe", x);
    best_.reset();
  }
  /// Forgets everything observed.
  void reset() {
    sample_.clear();
    best_.reset();
  }
  /// True until a finite value was observed.
  bool empty() const { return sample_.size() == 0; }
  /// Number of finite values kept (memory: 4 bytes each).
  std::size_t count() const { return sample_.size(); }
  /// The number of candidates given at construction.
  int candidates() const { return candidates_; }

  /// The candidate range with the least quantization MSE (cached). @throws qtx::error when nothing finite was observed.
  value_range range() const {
    detail::check_observed("mse_observer::range", !empty());
    if (!best_) best_ = search();
    return *best_;
  }

  /// The range was chosen for T; parameters of another type would not be the MSE-optimal ones.
  template <class U = T>
  quant_params params() const {
    static_assert(std::is_same_v<U, T>, "mse_observer<T>::params: the range was optimised for T");
    return range_params<T>(range());
  }

  /// Mean squared quantize → dequantize error of the observed values under range_params<T>(r).
  double mean_squared_error(value_range r) const {
    detail::check_observed("mse_observer::mean_squared_error", !empty());
    const quant_params p = range_params<T>(r);
    const float inv_scale = p.inv_scale();
    double sum = 0.0;
    for (float x : sample_.values()) {
      const float back =
          dequantize_one(quantize_one<T>(x, inv_scale, p.zero_point), p.scale, p.zero_point);
      const double e = static_cast<double>(x) - static_cast<double>(back);
      sum += e * e;
    }
    return sum / static_cast<double>(sample_.size());
  }

 private:
  value_range candidate(value_range widest, int i) const {
    const double f = static_cast<double>(i) / candidates_;
    return {static_cast<float>(widest.lo * f), static_cast<float>(widest.hi * f)};
  }

  value_range search() const {
    const value_range observed = detail::finite_minmax(sample_.values());
    value_range widest{std::min(observed.lo, 0.0f), std::max(observed.hi, 0.0f)};
    if constexpr (element_traits<T>::min < 0) {
      const float a = std::max(-widest.lo, widest.hi);
      widest = {-a, a};
    }
    value_range best = widest;
    double best_error = std::numeric_limits<double>::infinity();
    for (int i = candidates_; i >= 1; --i) {
      const value_range r = candidate(widest, i);
      const double e = mean_squared_error(r);
      if (e < best_error) {
        best_error = e;
        best = r;
      }
    }
    return best;
  }

  int candidates_;
  detail::finite_sample sample_;
  mutable std::optional<value_range> best_;
};

}  // namespace qtx
