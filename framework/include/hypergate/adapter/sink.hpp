#pragma once
// Sink: the runtime interface of everything that sends messages out (SoupBinTCP, UDP, NATS, pcap...).
//
// Contract:
//  - send() is the hot path: one virtual call per burst. It returns how many messages of the burst
//    it accepted (copied or queued); the caller keeps the rest and applies its backpressure policy.
//    A sink never keeps pointers into the burst after send() returns.
//  - flush() pushes out anything buffered (called at the end of each worker batch and at shutdown).
//  - service() is called by the owning worker once per loop iteration, whether or not anything was sent:
//    sinks that run their own event loop (accepting subscribers, answering logins, heartbeats) do that
//    work there, without blocking. It returns how much it did (0 = nothing), which keeps the worker from
//    going idle while a sink is busy. A sink whose service() work can arrive while its worker sleeps
//    (a subscriber connecting, a login) returns from wake_fd() a descriptor that is readable while
//    service() has work, as Source::wake_fd() describes; -1 (the default) for none.
//  - Exactly one thread (the worker that drains the sink's lanes) calls start()/send()/flush()/service()/stop().
#include <cstdint>
#include <string_view>

#include "hypergate/adapter/adapter_counters.hpp"
#include "hypergate/core/burst.hpp"
#include "hypergate/core/counter.hpp"
#include "hypergate/core/status.hpp"

namespace hypergate::adapter {

struct SinkStats {
  std::uint64_t messages = 0;  ///< messages accepted
  std::uint64_t bytes = 0;     ///< payload bytes accepted
  std::uint64_t drops = 0;     ///< messages the sink itself had to drop (slow subscriber...)
  std::uint64_t errors = 0;    ///< I/O errors
  AdapterCounters details;     ///< transport-specific figures (link state, NIC counters...), may be empty
};

/// The SinkStats counters as a sink keeps them: written by its worker, read by stats() on any thread
/// (see Counter).
struct SinkCounters {
  Counter messages, bytes, drops, errors;

  [[nodiscard]] SinkStats snapshot() const noexcept {
    return SinkStats{messages.get(), bytes.get(), drops.get(), errors.get(), {}};
  }
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
  /// Non-blocking upkeep once per worker loop iteration (see the header comment). Default: nothing.
  virtual std::size_t service() noexcept { return 0; }
  /// A descriptor readable while service() has work, for the idle worker to wait on; -1 for none.
  [[nodiscard]] virtual int wake_fd() noexcept { return -1; }

  [[nodiscard]] virtual SinkStats stats() const noexcept = 0;
};

}  // namespace hypergate::adapter
