#pragma once
// Non-blocking eventfd helpers shared by the runtime's worker wake-ups and adapters that wake a
// worker from their own threads (the nats source). Both calls are async-signal-safe (one write(2) or
// read(2)) and never block: the descriptors are made with EFD_NONBLOCK.
#include <sys/eventfd.h>
#include <unistd.h>

#include <cstdint>

namespace hypergate {

/// A non-blocking, close-on-exec eventfd; -1 on failure (callers fall back to bounded sleeps).
[[nodiscard]] inline int make_eventfd() noexcept { return ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC); }

/// Makes `fd` readable. EAGAIN (the counter is saturated) means it is readable already.
inline void signal_eventfd(int fd) noexcept {
  const std::uint64_t one = 1;
  [[maybe_unused]] const ssize_t r = ::write(fd, &one, sizeof one);
}

/// Clears `fd` (EAGAIN: it was not readable).
inline void drain_eventfd(int fd) noexcept {
  std::uint64_t v = 0;
  [[maybe_unused]] const ssize_t r = ::read(fd, &v, sizeof v);
}

}  // namespace hypergate
