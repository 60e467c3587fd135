#pragma once
/// @file
/// WordPiece tokenizer of BERT (uncased by default), matching HuggingFace's BertNormalizer +
/// BertPreTokenizer + WordPiece:
///   1. normalise: drop NUL, U+FFFD and controls; whitespace → ' '; space around CJK ideographs;
///      (uncased) strip accents, then lowercase;
///   2. split on whitespace, and isolate every punctuation character as its own word;
///   3. per word, greedy longest-match-first pieces from the vocabulary, continuations prefixed
///      "##"; a word longer than max_chars_per_word characters, or one with an unmatched rest,
///      becomes a single [UNK].
/// encode() adds [CLS] … [SEP] and truncates; pad() builds a rectangular batch with [PAD] and the
/// attention mask. Text is untrusted: invalid UTF-8 decodes to U+FFFD, which step 1 drops.
/// Unicode coverage: see unicode.hpp.
#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "../core/error.hpp"
#include "../core/types.hpp"
#include "../core/view.hpp"
#include "unicode.hpp"
#include "../config.hpp"

namespace qtx::QTX_ABI::io {

/// A vocabulary index, as the embedding table takes it.
using token_id = std::int32_t;

/// A batch of token sequences padded to one length: (batch × length) row-major.
struct token_batch {
  /// Number of sequences.
  index_t batch = 0;
  /// Padded length of every sequence.
  index_t length = 0;
  std::vector<token_id> ids;            ///< [PAD] after each sequence
  std::vector<token_id> attention_mask;  ///< 1 for a real token, 0 for padding

  /// The ids as a (batch × length) view.
  matrix_view<const token_id> id_matrix() const { return {ids.data(), batch, length, length, 1}; }
  /// The attention mask as a (batch × length) view.
  matrix_view<const token_id> mask_matrix() const {
    return {attention_mask.data(), batch, length, length, 1};
  }
};

/// How text is normalised and split before the vocabulary lookup.
struct wordpiece_options {
  bool lowercase = true;  ///< "uncased": also strips accents, as BERT does
  /// Longer words become [UNK] (BERT's rule), which also bounds the greedy search.
  index_t max_chars_per_word = 100;
};

/// BERT's tokenizer (basic splitting + greedy longest-match WordPiece), matching Hugging Face's
/// BertTokenizer on its vocabularies, so qtx models run on raw text without Python.
class wordpiece_tokenizer {
 public:
  /// The construction options.
  using options = wordpiece_options;
  /// Marks a piece that continues a word.
  static constexpr std::string_view continuation_prefix = "##";
  /// The special tokens every BERT vocabulary holds.
  ///@{
  static constexpr std::string_view unk_token = "[UNK]", cls_token = "[CLS]",
                                    sep_token = "[SEP]", pad_token = "[PAD]";
  ///@}

  /// vocab[i] is the token of id i; the four special tokens above must be present.
  explicit wordpiece_tokenizer(std::vector<std::string> vocab, options opts = {})
      : vocab_(std::move(vocab)), options_(opts) {
    check(options_.max_chars_per_word > 0, "wordpiece_tokenizer: max_chars_per_word (",
          options_.max_chars_per_word, ") must be positive");
    check(vocab_.size() < static_cast<std::size_t>(std::numeric_limits<token_id>::max()),
          "wordpiece_tokenizer: vocabulary of ", vocab_.size(), " tokens is too large");
    ids_.reserve(vocab_.size());
    for (std::size_t i = 0; i < vocab_.size(); ++i) {
      const bool inserted = ids_.emplace(vocab_[i], static_cast<token_id>(i)).second;
      check(inserted, "wordpiece_tokenizer: token '", vocab_[i], "' appears twice (line ", i + 1,
            ")");
    }
    unk_ = required_id(unk_token);
    cls_ = required_id(cls_token);
    sep_ = required_id(sep_token);
    pad_ = required_id(pad_token);
  }

  /// vocab.txt: one token per line, id = line number from 0; trailing whitespace is trimmed.
  static wordpiece_tokenizer from_file(const std::filesystem::path& path, options opts = {}) {
    std::ifstream in(path);
    check(in.good(), "wordpiece_tokenizer: cannot open vocabulary '", path.string(), "'");
    std::vector<std::string> vocab;
    for (std::string line; std::getline(in, line);) {
      while (!line.empty() && (line.back() == '\r' || line.back() == ' ' || line.back() == '\t'))
        line.pop_back();
      vocab.push_back(std::move(line));
    }
    return wordpiece_tokenizer(std::move(vocab), opts);
  }

  /// Number of tokens in the vocabulary.
  index_t vocab_size() const { return static_cast<index_t>(vocab_.size()); }
  /// Id of [UNK] (unknown words).
  token_id unk_id() const { return unk_; }
  /// Id of [CLS] (starts every sequence).
  token_id cls_id() const { return cls_; }
  /// Id of [SEP] (ends every sequence).
  token_id sep_id() const { return sep_; }
  /// Id of [PAD] (fills batches to one length).
  token_id pad_id() const { return pad_; }
  /// -1 when the token is not in the vocabulary.
  token_id id_of(std::string_view token) const {
    const auto it = ids_.find(token);
    return it == ids_.end() ? -1 : it->second;
  }
  /// The token of an id. @throws qtx::error for an id outside the vocabulary.
  const std::string& token_of(token_id id) const {
    check(id >= 0 && id < vocab_size(), "wordpiece_tokenizer: id ", id, " outside [0, ",
          vocab_size(), ")");
    return vocab_[static_cast<std::size_t>(id)];
  }

  /// Steps 1-2: the normalised words, before WordPiece.
  std::vector<std::string> basic_tokenize(std::string_view text) const {
    std::vector<std::string> words;
    std::string word;
    const auto flush = [&] {
      if (!word.empty()) words.push_back(std::move(word));
      word.clear();
    };
    for (char32_t c : normalize(text)) {
      if (c == ' ') {
        flush();
      } else if (unicode::is_punctuation(c)) {
        flush();
        unicode::append_utf8(word, c);
        flush();
      } else {
        unicode::append_utf8(word, c);
      }
    }
    flush();
    return words;
  }

  /// Steps 1-3 as ids, without special tokens.
  std::vector<token_id> tokenize_ids(std::string_view text) const {
    std::vector<token_id> ids;
    for (const std::string& word : basic_tokenize(text)) append_word_pieces(word, ids);
    return ids;
  }
  /// Steps 1-3 as token strings ("un", "##aff", "##able").
  std::vector<std::string> tokenize(std::string_view text) const {
    std::vector<std::string> tokens;
    for (token_id id : tokenize_ids(text)) tokens.push_back(token_of(id));
    return tokens;
  }

  /// [CLS] pieces [SEP], the pieces truncated so that the result has at most max_len ids.
  std::vector<token_id> encode(std::string_view text, index_t max_len) const {
    constexpr index_t special_tokens = 2;
    check(max_len >= special_tokens, "wordpiece_tokenizer::encode: max_len (", max_len,
          ") must leave room for [CLS] and [SEP]");
    std::vector<token_id> pieces = tokenize_ids(text);
    if (static_cast<index_t>(pieces.size()) > max_len - special_tokens)
      pieces.resize(static_cast<std::size_t>(max_len - special_tokens));
    std::vector<token_id> ids;
    ids.reserve(pieces.size() + special_tokens);
    ids.push_back(cls_);
    ids.insert(ids.end(), pieces.begin(), pieces.end());
    ids.push_back(sep_);
    return ids;
  }

  /// Pads sequences with [PAD] to `length` (-1: the longest sequence).
  token_batch pad(std::span<const std::vector<token_id>> sequences, index_t length = -1) const {
    index_t longest = 0;
    for (const auto& s : sequences) longest = std::max(longest, static_cast<index_t>(s.size()));
    if (length < 0) length = longest;
    check(longest <= length, "wordpiece_tokenizer::pad: a sequence of ", longest,
          " ids does not fit length ", length);
    token_batch batch;
    batch.batch = static_cast<index_t>(sequences.size());
    batch.length = length;
    batch.ids.assign(static_cast<std::size_t>(batch.batch * length), pad_);
    batch.attention_mask.assign(static_cast<std::size_t>(batch.batch * length), 0);
    for (index_t b = 0; b < batch.batch; ++b) {
      const auto& s = sequences[static_cast<std::size_t>(b)];
      for (std::size_t t = 0; t < s.size(); ++t) {
        const auto at = static_cast<std::size_t>(b * length) + t;
        batch.ids[at] = s[t];
        batch.attention_mask[at] = 1;
      }
    }
    return batch;
  }

 private:
  /// Heterogeneous lookup: find(string_view) without building a std::string.
  struct string_hash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };

  token_id required_id(std::string_view token) const {
    const token_id id = id_of(token);
    check(id >= 0, "wordpiece_tokenizer: the vocabulary has no ", token, " token");
    return id;
  }

  std::u32string normalize(std::string_view text) const {
    std::u32string out;
    std::u32string stripped;
    for (char32_t c : unicode::decode_utf8(text)) {
      if (c == 0 || c == unicode::replacement_character || unicode::is_control(c)) continue;
      if (unicode::is_whitespace(c)) {
        out.push_back(' ');
      } else if (unicode::is_cjk_ideograph(c)) {
        out.push_back(' ');
        out.push_back(c);
        out.push_back(' ');
      } else if (options_.lowercase) {
        stripped.clear();
        unicode::append_without_accents(stripped, c);
        for (char32_t s : stripped) out.push_back(unicode::to_lower(s));
      } else {
        out.push_back(c);
      }
    }
    return out;
  }

  /// Greedy longest-match-first over the characters of one word.
  void append_word_pieces(const std::string& word, std::vector<token_id>& out) const {
    std::vector<std::size_t> boundaries;  // byte offset of every character start, then the end
    for (std::size_t i = 0; i < word.size(); ++i)
      if ((static_cast<unsigned char>(word[i]) & 0xC0) != 0x80) boundaries.push_back(i);
    boundaries.push_back(word.size());
    const std::size_t chars = boundaries.size() - 1;
    if (static_cast<index_t>(chars) > options_.max_chars_per_word) {
      out.push_back(unk_);
      return;
    }
    const std::size_t first_piece = out.size();
    std::string candidate;
    for (std::size_t start = 0; start < chars;) {
      token_id match = -1;
      std::size_t end = chars;
      for (; end > start; --end) {
        candidate.assign(start == 0 ? std::string_view{} : continuation_prefix);
        candidate.append(word, boundaries[start], boundaries[end] - boundaries[start]);
        match = id_of(candidate);
        if (match >= 0) break;
      }
      if (match < 0) {  // no piece fits: the whole word is unknown
        out.resize(first_piece);
        out.push_back(unk_);
        return;
      }
      out.push_back(match);
      start = end;
    }
  }

  std::vector<std::string> vocab_;
  std::unordered_map<std::string, token_id, string_hash, std::equal_to<>> ids_;
  options options_;
  token_id unk_ = 0, cls_ = 0, sep_ = 0, pad_ = 0;
};

}  // namespace qtx::io
