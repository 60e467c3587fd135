#pragma once
// Tokenizes bytes with qtx::io::wordpiece_tokenizer and checks what must hold for any text. Shared by
// the libFuzzer harness (fuzz_wordpiece.cpp) and the corpus regression test (tests/test_tokenizer.cpp).
//
// Input bytes:
//   byte 0   bit 0: cased (no lowercasing or accent stripping); bits 1-2: max_chars_per_word
//            (100, 1, 4, 17); bit 3: the vocabulary is the special tokens plus the text's lines,
//            instead of the MiniLM subset (minilm_vocab_subset.txt)
//   byte 1   max_len of encode() (0 and 1 must be refused)
//   the rest the text
//
// Checked (a violation traps, so the fuzzer reports it): every word of basic_tokenize() is
// non-empty valid UTF-8 without whitespace or controls, and a punctuation character is a word of its
// own; normalising is idempotent (the words, joined by spaces, give the same words again); the
// pieces of tokenize_ids() are in-vocabulary ids that spell out the words in order ("##" marking
// continuations), a word becoming [UNK] only as a whole; encode() is [CLS], a prefix of the pieces,
// [SEP], within max_len; pad() keeps every sequence and masks exactly its tokens. Anything thrown
// must be qtx::error.
#include <qtx/io/unicode.hpp>
#include <qtx/io/wordpiece.hpp>

#include <cstdint>
#include <filesystem>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace qtx::fuzz {

inline const std::filesystem::path& wordpiece_vocab_path() {
  static const std::filesystem::path path =
      std::filesystem::path(__FILE__).parent_path() / "minilm_vocab_subset.txt";
  return path;
}

namespace detail {

inline void require(bool condition) {
  if (!condition) __builtin_trap();
}

struct wordpiece_input {
  io::wordpiece_options options;
  bool own_vocabulary = false;
  index_t max_len = 0;
  std::string_view text;
};

inline wordpiece_input decode_wordpiece_input(std::span<const std::uint8_t> data) {
  constexpr index_t max_chars[] = {100, 1, 4, 17};
  const auto at = [&](std::size_t i) -> std::uint8_t { return i < data.size() ? data[i] : 0; };
  wordpiece_input in;
  in.options.lowercase = (at(0) & 1) == 0;
  in.options.max_chars_per_word = max_chars[(at(0) >> 1) & 3];
  in.own_vocabulary = (at(0) & 8) != 0;
  in.max_len = at(1);
  const std::size_t header = std::min<std::size_t>(data.size(), 2);
  in.text = {reinterpret_cast<const char*>(data.data()) + header, data.size() - header};
  return in;
}

// The special tokens, then every line of the text (a duplicate line is refused: qtx::error).
inline std::vector<std::string> vocabulary_of_lines(std::string_view text) {
  std::vector<std::string> vocab{"[PAD]", "[UNK]", "[CLS]", "[SEP]"};
  for (std::size_t start = 0; start <= text.size();) {
    const std::size_t end = std::min(text.find('\n', start), text.size());
    vocab.emplace_back(text.substr(start, end - start));
    start = end + 1;
  }
  return vocab;
}

inline void check_words(const io::wordpiece_tokenizer& tok, const std::vector<std::string>& words) {
  for (const std::string& w : words) {
    require(!w.empty());
    const std::u32string chars = io::unicode::decode_utf8(w);
    std::string reencoded;
    for (char32_t c : chars) {
      require(c != io::unicode::replacement_character && c != 0);
      require(!io::unicode::is_whitespace(c) && !io::unicode::is_control(c));
      require(!io::unicode::is_punctuation(c) || chars.size() == 1);
      io::unicode::append_utf8(reencoded, c);
    }
    require(reencoded == w);  // valid UTF-8
  }
  std::string joined;
  for (const std::string& w : words) joined += w + " ";
  require(tok.basic_tokenize(joined) == words);
}

// The pieces, split where a piece does not continue ("##"), spell the words one by one.
inline void check_pieces(const io::wordpiece_tokenizer& tok, const std::vector<std::string>& words,
                         const std::vector<io::token_id>& ids) {
  constexpr std::string_view prefix = io::wordpiece_tokenizer::continuation_prefix;
  std::size_t next = 0;
  for (const std::string& w : words) {
    require(next < ids.size());
    if (ids[next] == tok.unk_id()) {
      ++next;
      continue;
    }
    std::string spelled = tok.token_of(ids[next++]);
    while (next < ids.size() && ids[next] != tok.unk_id()) {
      const std::string& piece = tok.token_of(ids[next]);
      if (!piece.starts_with(prefix)) break;
      spelled += piece.substr(prefix.size());
      ++next;
    }
    require(spelled == w);
  }
  require(next == ids.size());
}

inline void check_encode_and_pad(const io::wordpiece_tokenizer& tok, index_t max_len,
                                 std::string_view text, const std::vector<io::token_id>& pieces) {
  std::vector<io::token_id> ids;
  try {
    ids = tok.encode(text, max_len);
  } catch (const qtx::error&) {
    require(max_len < 2);
    return;
  }
  require(max_len >= 2 && index_t(ids.size()) <= max_len && ids.size() >= 2);
  require(ids.front() == tok.cls_id() && ids.back() == tok.sep_id());
  require(ids.size() - 2 == std::min(pieces.size(), std::size_t(max_len - 2)));
  require(std::equal(ids.begin() + 1, ids.end() - 1, pieces.begin()));
  const std::vector<std::vector<io::token_id>> sequences{ids, {}, pieces};
  const io::token_batch batch = tok.pad(sequences);
  require(batch.batch == 3);
  for (index_t b = 0; b < batch.batch; ++b) {
    const auto& s = sequences[std::size_t(b)];
    for (index_t t = 0; t < batch.length; ++t) {
      const bool real = t < index_t(s.size());
      require(batch.mask_matrix()(b, t) == (real ? 1 : 0));
      require(batch.id_matrix()(b, t) == (real ? s[std::size_t(t)] : tok.pad_id()));
    }
  }
}

inline std::uint64_t tokenize_and_check(const io::wordpiece_tokenizer& tok, const wordpiece_input& in) {
  const std::vector<std::string> words = tok.basic_tokenize(in.text);
  check_words(tok, words);
  const std::vector<io::token_id> ids = tok.tokenize_ids(in.text);
  for (io::token_id id : ids) {
    require(id >= 0 && id < tok.vocab_size());
    require(tok.id_of(tok.token_of(id)) == id);
  }
  check_pieces(tok, words, ids);
  check_encode_and_pad(tok, in.max_len, in.text, ids);
  return words.size() + ids.size();
}

}  // namespace detail

// Returns a checksum (so nothing is optimised away).
inline std::uint64_t exercise_wordpiece(std::span<const std::uint8_t> data) {
  const detail::wordpiece_input in = detail::decode_wordpiece_input(data);
  if (in.own_vocabulary) {
    std::optional<io::wordpiece_tokenizer> tok;
    try {
      tok.emplace(detail::vocabulary_of_lines(in.text), in.options);
    } catch (const qtx::error&) {
      return 0;  // a duplicate line
    }
    return detail::tokenize_and_check(*tok, in);
  }
  // One tokenizer per option set, loaded once.
  static std::optional<io::wordpiece_tokenizer> tokenizers[8];
  const std::size_t key = (in.options.lowercase ? 0 : 4) +
                          std::size_t((data.empty() ? 0 : data[0]) >> 1 & 3);
  if (!tokenizers[key]) tokenizers[key] = io::wordpiece_tokenizer::from_file(wordpiece_vocab_path(), in.options);
  return detail::tokenize_and_check(*tokenizers[key], in);
}

}  // namespace qtx::fuzz
