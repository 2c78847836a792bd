#pragma once
// ScratchArena: a per-worker bump allocator over one fixed buffer, for transforms that cannot
// rewrite a message in place (the payload view points into the source's receive buffer, which a
// transform must not write) and need somewhere to put the rewritten bytes.
//
// Contract:
//  - The buffer is allocated once, by the constructor (cold path). allocate() never touches the heap:
//    it bumps an offset and returns nullptr when the buffer cannot hold the request (the caller turns
//    that into a counted reject, never a crash).
//  - reset() makes the whole buffer free again. The pipeline calls it after each burst, once the
//    Emitter has been flushed: route.hpp's lifetime rule says downstream copies what it keeps, so
//    nothing points into the arena after process() returns.
//  - Not thread-safe: one arena per pipeline instance, and a pipeline instance belongs to one worker.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string_view>

namespace hypergate::route {

class ScratchArena {
 public:
  static constexpr std::size_t kDefaultBytes = 64 * 1024;  ///< a burst of 32 rewritten 2 KiB messages

  explicit ScratchArena(std::size_t bytes = kDefaultBytes)
      : buffer_(bytes > 0 ? std::make_unique<std::byte[]>(bytes) : nullptr), capacity_(bytes) {}
  ScratchArena(const ScratchArena&) = delete;
  ScratchArena& operator=(const ScratchArena&) = delete;
  ScratchArena(ScratchArena&&) noexcept = default;
  ScratchArena& operator=(ScratchArena&&) noexcept = default;

  /// `n` bytes aligned to `align` (a power of two), or nullptr when the arena is exhausted.
  [[nodiscard]] std::byte* allocate(std::size_t n, std::size_t align = alignof(std::max_align_t)) noexcept {
    const std::size_t start = (used_ + align - 1) & ~(align - 1);
    if (start > capacity_ || n > capacity_ - start) return nullptr;
    used_ = start + n;
    return buffer_.get() + start;
  }
  /// Copies `s` into the arena; an empty view with a null data pointer when it does not fit.
  [[nodiscard]] std::string_view copy(std::string_view s) noexcept {
    std::byte* p = allocate(s.size(), 1);
    if (p == nullptr) return {};
    if (!s.empty()) std::memcpy(p, s.data(), s.size());
    return {reinterpret_cast<const char*>(p), s.size()};
  }

  void reset() noexcept { used_ = 0; }
  [[nodiscard]] std::size_t used() const noexcept { return used_; }
  [[nodiscard]] std::size_t capacity() const noexcept { return capacity_; }
  [[nodiscard]] std::size_t available() const noexcept { return capacity_ - used_; }

 private:
  std::unique_ptr<std::byte[]> buffer_;
  std::size_t capacity_ = 0;
  std::size_t used_ = 0;
};

}  // namespace hypergate::route
