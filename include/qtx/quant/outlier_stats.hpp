#pragma once
/// @file
/// The paper's outlier metrics of one sequence x (a T × d activation matrix, flattened to n values):
///
///   inf_norm(x) = max |x_i|
///   kurtosis(x) = mean((x_i − μ)⁴) / (σ⁴ + 1e−6),   μ = mean(x_i),  σ² = Σ(x_i − μ)² / (n − 1)
///
/// σ is the unbiased standard deviation, and the kurtosis is not the excess one: a Gaussian gives
/// ≈ 3, a uniform ≈ 1.8, a sequence dominated by a few huge outliers gives values in the thousands.
/// outlier_stats averages both over sequences (and keeps the largest inf-norm), as the paper reports
/// them per module.
///
/// Non-finite values are not hidden: a NaN anywhere makes both metrics NaN, ±inf makes the inf-norm
/// inf and the kurtosis NaN (a non-finite activation is a bug to surface, not to average away).
/// Everything is accumulated in double with a two-pass mean / central moments.
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <limits>
#include <span>

#include "../core/error.hpp"
#include "../core/types.hpp"
#include "../core/view.hpp"
#include "../config.hpp"

namespace qtx::QTX_ABI {

/// Added to σ⁴ so that a constant sequence gives kurtosis 0 instead of 0/0 (as in the paper's code).
inline constexpr double kurtosis_epsilon = 1e-6;

namespace detail {

// Σ f(x_i) over the matrix in double, row by row; works for any strides.
template <class F>
double sum_over(matrix_view<const float> x, F&& f) {
  double sum = 0.0;
  for (index_t r = 0; r < x.rows; ++r) {
    const float* row = x.row(r);
    for (index_t c = 0; c < x.cols; ++c) sum += f(static_cast<double>(row[c * x.col_stride]));
  }
  return sum;
}

inline void check_sequence(const char* fn, matrix_view<const float> x, index_t min_size) {
  check_view(fn, "x", x);
  check(x.size() >= min_size, fn, ": x is ", x.rows, "x", x.cols, " but needs at least ", min_size,
        " element", min_size == 1 ? "" : "s");
}

}  // namespace detail

/// max |x_i|; NaN if any x_i is NaN.
inline float inf_norm(matrix_view<const float> x) {
  detail::check_sequence("inf_norm", x, 1);
  float result = 0.0f;
  for (index_t r = 0; r < x.rows; ++r) {
    const float* row = x.row(r);
    for (index_t c = 0; c < x.cols; ++c) {
      const float magnitude = std::abs(row[c * x.col_stride]);
      if (std::isnan(magnitude)) return std::numeric_limits<float>::quiet_NaN();
      result = std::max(result, magnitude);
    }
  }
  return result;
}

/// Non-excess kurtosis with the unbiased variance in the denominator (needs n ≥ 2).
inline double kurtosis(matrix_view<const float> x) {
  detail::check_sequence("kurtosis", x, 2);
  const double n = static_cast<double>(x.size());
  const double mean = detail::sum_over(x, [](double v) { return v; }) / n;
  double sum_sq = 0.0;
  double sum_fourth = 0.0;
  for (index_t r = 0; r < x.rows; ++r) {
    const float* row = x.row(r);
    for (index_t c = 0; c < x.cols; ++c) {
      const double d = static_cast<double>(row[c * x.col_stride]) - mean;
      const double d2 = d * d;
      sum_sq += d2;
      sum_fourth += d2 * d2;
    }
  }
  const double variance = sum_sq / (n - 1.0);
  return (sum_fourth / n) / (variance * variance + kurtosis_epsilon);
}

/// inf_norm of contiguous values. @throws qtx::error for an empty x.
inline float inf_norm(std::span<const float> x) {
  return inf_norm(matrix_view<const float>(x.data(), 1, static_cast<index_t>(x.size()), 0));
}
/// kurtosis of contiguous values. @throws qtx::error for fewer than 2 values.
inline double kurtosis(std::span<const float> x) {
  return kurtosis(matrix_view<const float>(x.data(), 1, static_cast<index_t>(x.size()), 0));
}

/// Per-sequence metrics averaged over sequences (one module's statistics in the paper's tables).
class outlier_stats {
 public:
  /// Adds one sequence's inf-norm and kurtosis. @throws qtx::error (unchanged state) for an invalid view.
  void add_sequence(matrix_view<const float> x) {
    // Both metrics first, so a throwing call leaves the accumulator unchanged.
    const float norm = inf_norm(x);
    const double kurt = kurtosis(x);
    add(norm, kurt);
  }
  /// Adds one sequence's inf-norm and kurtosis. @throws qtx::error (unchanged state) for too few values.
  void add_sequence(std::span<const float> x) {
    const float norm = inf_norm(x);
    const double kurt = kurtosis(x);
    add(norm, kurt);
  }

  /// Folds in another accumulator (e.g. one per thread or per calibration shard).
  void merge(const outlier_stats& other) {
    if (other.count_ == 0) return;
    max_inf_norm_ =
        count_ == 0 ? other.max_inf_norm_ : nan_aware_max(max_inf_norm_, other.max_inf_norm_);
    sum_inf_norm_ += other.sum_inf_norm_;
    sum_kurtosis_ += other.sum_kurtosis_;
    count_ += other.count_;
  }

  /// Forgets every sequence.
  void reset() { *this = outlier_stats{}; }
  /// Number of sequences added.
  std::size_t count() const { return count_; }

  /// Mean of the sequences' inf-norms. @throws qtx::error before the first sequence.
  double mean_inf_norm() const {
    check_count("outlier_stats::mean_inf_norm");
    return sum_inf_norm_ / static_cast<double>(count_);
  }
  /// Mean of the sequences' kurtoses. @throws qtx::error before the first sequence.
  double mean_kurtosis() const {
    check_count("outlier_stats::mean_kurtosis");
    return sum_kurtosis_ / static_cast<double>(count_);
  }
  /// Largest inf-norm of any sequence (NaN if any was NaN). @throws qtx::error before the first sequence.
  float max_inf_norm() const {
    check_count("outlier_stats::max_inf_norm");
    return max_inf_norm_;
  }

 private:
  /// A NaN inf-norm stays NaN in the maximum (std::max would drop it depending on argument order).
  static float nan_aware_max(float a, float b) {
    return std::isnan(a) ? a : std::isnan(b) ? b : std::max(a, b);
  }

  void add(float norm, double kurt) {
    max_inf_norm_ = count_ == 0 ? norm : nan_aware_max(max_inf_norm_, norm);
    sum_inf_norm_ += norm;
    sum_kurtosis_ += kurt;
    ++count_;
  }
  void check_count(const char* fn) const {
    check(count_ > 0, fn, ": no sequence added yet; call add_sequence() first");
  }

  double sum_inf_norm_ = 0.0;
  double sum_kurtosis_ = 0.0;
  float max_inf_norm_ = 0.0f;
  std::size_t count_ = 0;
};

}  // namespace qtx
