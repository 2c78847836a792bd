#pragma once
// Sink: the runtime interface of everything that sends messages out (SoupBinTCP, UDP, NATS, pcap...).
//
// Contract:
//  - send() is the hot path: one virtual call per burst. It returns how many messages of the burst
//    it accepted (copied or queued); the caller keeps the rest and applies its backpressure policy.
//    A sink never keeps pointers into the burst after send() returns.
//  - flush() pushes out anything buffered (called at the end of each worker batch and at shutdown).
//  - Exactly one thread (the worker that drains the sink's lanes) calls send()/flush().
#include <cstdint>
#include <string_view>

#include "hypergate/core/burst.hpp"
#include "hypergate/core/status.hpp"

namespace hypergate::adapter {

struct SinkStats {
  std::uint64_t messages = 0;  ///< messages accepted
  std::uint64_t bytes = 0;     ///< payload bytes accepted
  std::uint64_t drops = 0;     ///< messages the sink itself had to drop (slow subscriber...)
  std::uint64_t errors = 0;    ///< I/O errors
};

class Sink {
 public:
  virtual ~Sink() = default;

  [[nodiscard]] virtual std::string_view type() const noexcept = 0;
  [[nodiscard]] virtual Result<void> start() = 0;
  virtual void stop() noexcept = 0;

  /// Accepts a prefix of `burst` and returns its length (burst.size() when everything fit).
  virtual std::size_t send(const Burst<>& burst) noexcept = 0;
  virtual void flush() noexcept {}

  [[nodiscard]] virtual SinkStats stats() const noexcept = 0;
};

}  // namespace hypergate::adapter
