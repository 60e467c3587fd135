#pragma once
// A Catch2 matcher for qtx::error messages: they start with the public function the user called
// ("softmax: ") and name the argument and its value somewhere after. One matcher that owns both
// strings (Catch2 v2's `a && b` keeps pointers to its operands, so a composed matcher returned from
// a helper would dangle).
#include <string>
#include <utility>

#include <catch2/catch.hpp>

namespace test_messages {

class names final : public Catch::MatcherBase<std::string> {
 public:
  names(std::string function, std::string text) : prefix_(std::move(function) + ": "), text_(std::move(text)) {}
  bool match(const std::string& message) const override {
    return message.rfind(prefix_, 0) == 0 && message.find(text_) != std::string::npos;
  }
  std::string describe() const override {
    return "starts with \"" + prefix_ + "\" and contains \"" + text_ + "\"";
  }

 private:
  std::string prefix_, text_;
};

}  // namespace test_messages
