#pragma once
/// @file
/// Variable-length sequences packed back to back along the token rows, for batched forward passes
/// without padding: a batch of sequences of T₀, T₁, … tokens is one (ΣTᵢ, d_model) matrix. Every
/// row-wise part of a layer (projections, LayerNorms, FFN, quantizers) runs once over all rows, so
/// the GEMMs see M = ΣTᵢ and stream each weight once per batch instead of once per sentence;
/// attention alone runs per sequence, on its own rows, and never computes a score between two
/// sequences. The results are those of running the sequences one at a time (bit for bit: every
/// kernel computes a row the same way whatever the rows around it).
#include <cstddef>
#include <span>

#include "../core/error.hpp"
#include "../core/types.hpp"
#include "../config.hpp"

namespace qtx::QTX_ABI::nn {

/// The token counts of sequences packed along the rows; empty: one sequence of all the rows.
struct packed_sequences {
  std::span<const index_t> lengths;  ///< tokens of each sequence, in row order; each ≥ 1

  /// Whether this is the single-sequence default.
  bool single() const { return lengths.empty(); }

  /// Checks that the lengths are positive and sum to `tokens` (the rows of the packed matrix).
  /// @throws qtx::error naming fn and the offending length or the sum.
  void check(const char* fn, index_t tokens) const {
    index_t sum = 0;
    for (std::size_t i = 0; i < lengths.size(); ++i) {
      qtx::check(lengths[i] > 0, fn, ": sequence length [", i, "] (", lengths[i], ") must be positive");
      sum += lengths[i];
      qtx::check(sum <= tokens, fn, ": the sequence lengths sum to more than the ", tokens, " rows of x");
    }
    qtx::check(single() || sum == tokens, fn, ": the sequence lengths sum to ", sum, ", x has ", tokens, " rows");
  }

  /// Calls f(first_row, rows) for each sequence of a checked packing of `tokens` rows, in order.
  template <class F>
  void for_each(index_t tokens, F&& f) const {
    if (single()) {
      f(index_t(0), tokens);
      return;
    }
    index_t first = 0;
    for (const index_t n : lengths) {
      f(first, n);
      first += n;
    }
  }
};

}  // namespace qtx::nn
