#pragma once
// Source: the runtime interface of everything that brings messages in (UDP, DPDK, pcap, HTTP...).
//
// Contract:
//  - start() is called once on the owning worker's thread before the first poll(); stop() once after
//    the last. Both are cold path and may allocate or make syscalls.
//  - poll() is the hot path: one virtual call per burst. It appends up to out.capacity() - out.size()
//    messages and returns how many it appended. It never blocks; 0 means "nothing right now".
//  - The bytes behind the messages belong to the source. They stay valid until release() is called
//    with that burst; then the source may reuse the buffers (recycle ring slots, free mbufs...).
//  - Exactly one thread (the owning worker) calls poll()/release(); stats() may be called from any
//    thread, so counters it returns are read with relaxed atomics (monotonic, no ordering needed).
#include <cstdint>
#include <string_view>

#include "hypergate/core/burst.hpp"
#include "hypergate/core/status.hpp"

namespace hypergate::adapter {

struct SourceStats {
  std::uint64_t messages = 0;  ///< messages handed to the pipeline
  std::uint64_t bytes = 0;     ///< payload bytes handed to the pipeline
  std::uint64_t polls = 0;     ///< poll() calls that returned at least one message
  std::uint64_t rejects = 0;   ///< malformed frames refused by the source itself (counted, not passed on)
  std::uint64_t drops = 0;     ///< messages lost before the source saw them (kernel/NIC counters)
  std::uint64_t errors = 0;    ///< I/O errors
};

class Source {
 public:
  virtual ~Source() = default;

  [[nodiscard]] virtual std::string_view type() const noexcept = 0;
  [[nodiscard]] virtual Result<void> start() = 0;
  virtual void stop() noexcept = 0;

  /// Appends up to the free room of `out` and returns the number appended. Never blocks.
  virtual std::size_t poll(Burst<>& out) noexcept = 0;
  /// Every message of `done` (from this source) has been processed: its memory may be reused.
  virtual void release(Burst<>& done) noexcept { (void)done; }
  /// True once the source has nothing more to give (end of a capture, end of session).
  [[nodiscard]] virtual bool finished() const noexcept { return false; }

  [[nodiscard]] virtual SourceStats stats() const noexcept = 0;
};

}  // namespace hypergate::adapter
