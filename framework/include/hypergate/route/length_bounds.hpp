#pragma once
// LengthBounds: rejects messages whose payload is shorter than `min` or longer than `max` bytes.
// Two compares per message; the bounds are inclusive.
#include <array>
#include <cstdint>
#include <string_view>

#include "hypergate/core/message.hpp"
#include "hypergate/route/stage.hpp"

namespace hypergate::route {

class LengthBounds {
 public:
  static constexpr std::array<std::string_view, 2> kReasons{"too_short", "too_long"};
  enum Reason : std::size_t { kTooShort = 0, kTooLong = 1 };

  LengthBounds() = default;
  LengthBounds(std::uint32_t min, std::uint32_t max) noexcept : min_(min), max_(max) {}

  [[nodiscard]] Verdict check(const Message& m) const noexcept {
    if (m.size < min_) [[unlikely]] return Verdict::reject(kTooShort);
    if (m.size > max_) [[unlikely]] return Verdict::reject(kTooLong);
    return Verdict::pass();
  }

  [[nodiscard]] std::uint32_t min() const noexcept { return min_; }
  [[nodiscard]] std::uint32_t max() const noexcept { return max_; }

 private:
  std::uint32_t min_ = 0;
  std::uint32_t max_ = UINT32_MAX;
};
static_assert(Validator<LengthBounds>);

}  // namespace hypergate::route
