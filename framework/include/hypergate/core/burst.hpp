#pragma once
// Burst<N>: a fixed-capacity array of messages, the unit of work everywhere (DPDK's lesson): sources
// fill one per poll, stages walk it in a loop, sinks send it in one call. No allocation: the
// messages live inside the Burst, which a worker keeps on its stack or in its state.
#include <array>
#include <cassert>
#include <cstddef>
#include <cstdint>

#include "hypergate/core/message.hpp"

namespace hypergate {

inline constexpr std::size_t kDefaultBurst = 32;

template <std::size_t N = kDefaultBurst>
class Burst {
  static_assert(N > 0, "a burst holds at least one message");
  static_assert(N <= 1024, "bursts are meant to stay in L1/L2: 1024 messages is 64 KiB of metadata");

 public:
  static constexpr std::size_t kCapacity = N;

  [[nodiscard]] std::size_t size() const noexcept { return size_; }
  [[nodiscard]] static constexpr std::size_t capacity() noexcept { return N; }
  [[nodiscard]] bool empty() const noexcept { return size_ == 0; }
  [[nodiscard]] bool full() const noexcept { return size_ == N; }
  void clear() noexcept { size_ = 0; }

  /// Appends a default message and returns it; precondition: !full().
  Message& emplace_back() noexcept {
    assert(size_ < N);
    Message& m = msgs_[size_++];
    m = Message{};
    return m;
  }
  /// Appends a message left as it was (stale contents) and returns it, for a caller that overwrites
  /// every field at once (e.g. valve::Slot::view_into); precondition: !full().
  Message& emplace_back_for_overwrite() noexcept {
    assert(size_ < N);
    return msgs_[size_++];
  }
  /// Appends a copy; returns false (and changes nothing) when the burst is full.
  [[nodiscard]] bool push_back(const Message& m) noexcept {
    if (size_ == N) return false;
    msgs_[size_++] = m;
    return true;
  }
  /// Shrinks to n messages (n <= size()), e.g. after compacting rejected messages out.
  void resize_down(std::size_t n) noexcept {
    assert(n <= size_);
    size_ = static_cast<std::uint32_t>(n);
  }

  Message& operator[](std::size_t i) noexcept { return msgs_[i]; }
  const Message& operator[](std::size_t i) const noexcept { return msgs_[i]; }
  Message* begin() noexcept { return msgs_.data(); }
  Message* end() noexcept { return msgs_.data() + size_; }
  const Message* begin() const noexcept { return msgs_.data(); }
  const Message* end() const noexcept { return msgs_.data() + size_; }
  Message* data() noexcept { return msgs_.data(); }

 private:
  std::array<Message, N> msgs_{};
  std::uint32_t size_ = 0;
};

}  // namespace hypergate
