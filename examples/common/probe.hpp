#pragma once
// A logistic-regression probe (full-batch gradient descent, L2-regularised) on fixed embeddings:
// the downstream check that W8A8 embeddings still carry what FP32 embeddings carry.
#include <cmath>
#include <vector>

namespace demo {

class logistic_regression {
 public:
  logistic_regression(const std::vector<std::vector<float>>& x, const std::vector<int>& y, int epochs = 300,
                      double learning_rate = 2.0, double l2 = 1e-4) {
    const std::size_t n = x.size(), d = n ? x[0].size() : 0;
    w_.assign(d, 0.0);
    // Standardise by the training statistics: embeddings are unit-norm, features are tiny.
    mean_.assign(d, 0.0);
    scale_.assign(d, 0.0);
    for (const auto& r : x)
      for (std::size_t j = 0; j < d; ++j) mean_[j] += r[j] / double(n);
    for (const auto& r : x)
      for (std::size_t j = 0; j < d; ++j) scale_[j] += (r[j] - mean_[j]) * (r[j] - mean_[j]) / double(n);
    for (auto& s : scale_) s = 1.0 / std::sqrt(s + 1e-12);
    std::vector<double> grad(d);
    for (int e = 0; e < epochs; ++e) {
      std::fill(grad.begin(), grad.end(), 0.0);
      double grad_b = 0.0;
      for (std::size_t i = 0; i < n; ++i) {
        const double err = sigmoid(logit(x[i])) - y[i];
        for (std::size_t j = 0; j < d; ++j) grad[j] += err * feature(x[i], j);
        grad_b += err;
      }
      for (std::size_t j = 0; j < d; ++j) w_[j] -= learning_rate * (grad[j] / double(n) + l2 * w_[j]);
      b_ -= learning_rate * grad_b / double(n);
    }
  }

  double accuracy(const std::vector<std::vector<float>>& x, const std::vector<int>& y) const {
    std::size_t right = 0;
    for (std::size_t i = 0; i < x.size(); ++i) right += (logit(x[i]) > 0.0) == (y[i] == 1);
    return x.empty() ? 0.0 : double(right) / double(x.size());
  }

 private:
  static double sigmoid(double z) { return 1.0 / (1.0 + std::exp(-z)); }
  double feature(const std::vector<float>& r, std::size_t j) const { return (r[j] - mean_[j]) * scale_[j]; }
  double logit(const std::vector<float>& r) const {
    double z = b_;
    for (std::size_t j = 0; j < w_.size(); ++j) z += w_[j] * feature(r, j);
    return z;
  }
  std::vector<double> w_, mean_, scale_;
  double b_ = 0.0;
};

}  // namespace demo
