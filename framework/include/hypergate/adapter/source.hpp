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
//  - Verdicts (opt-in): a source that must answer each input with what the valve engine did (the HTTP
//    `/fire` endpoint) returns true from wants_outcomes() (read once, when the runtime adds it). Then,
//    while the pipeline processes a burst polled from it, on_outcomes() is called on the owning worker
//    for every batch the pipeline hands downstream (up to kDefaultBurst messages per call, zero or more
//    calls per burst), all before release() of that burst. `messages` are the pipeline's OUTPUT: a
//    pipeline may emit 0..N messages per input and may rewrite fields, so the source correlates them
//    with a field it set and the pipeline carries over (Message::sequence for the passthrough and
//    validated pipelines). An input that is still unanswered at release() never reached the engine:
//    the pipeline rejected or swallowed it. Messages a pipeline emits from tick() (outside a burst)
//    are not reported. Sources that do not ask cost one branch per burst; those that ask have their
//    messages pushed one at a time, so that each gets its own verdict and acceptance tick.
//  - Waking an idle worker (opt-in): a worker with nothing to do sleeps (IdlePolicy::Backoff). A source
//    whose input can become ready while it sleeps returns from wake_fd() a descriptor that is readable
//    (POLLIN) while poll() has work: a socket, an io_uring ring (readable while completions are
//    queued). The worker's sleep waits on it and ends as soon as input is ready, instead of at the
//    end of a bounded sleep. The descriptor must stay readable until poll() has taken the work (level
//    triggered, cleared by the source doing its work), stay open while the source runs, and be owned
//    by the source. -1 (the default): none; the source is polled again after at most one sleep.
//    wake_fd() is called right before each sleep (not once), on the worker's thread.
#include <cstdint>
#include <span>
#include <string_view>

#include "hypergate/adapter/adapter_counters.hpp"
#include "hypergate/core/burst.hpp"
#include "hypergate/core/counter.hpp"
#include "hypergate/core/status.hpp"

namespace hypergate::adapter {

struct SourceStats {
  std::uint64_t messages = 0;  ///< messages handed to the pipeline
  std::uint64_t bytes = 0;     ///< payload bytes handed to the pipeline
  std::uint64_t polls = 0;     ///< poll() calls that returned at least one message
  std::uint64_t rejects = 0;   ///< malformed frames refused by the source itself (counted, not passed on)
  std::uint64_t drops = 0;     ///< messages lost before the source saw them (kernel/NIC counters)
  std::uint64_t errors = 0;    ///< I/O errors
  AdapterCounters details;     ///< transport-specific figures (link state, NIC counters...), may be empty
};

/// The SourceStats counters as a source keeps them: written by its worker, read by stats() on any
/// thread (see Counter). A source with nothing to add returns snapshot() from stats().
struct SourceCounters {
  Counter messages, bytes, polls, rejects, drops, errors;

  /// One poll() that handed `n` messages of `payload_bytes` bytes to the pipeline (n > 0).
  void polled(std::uint64_t n, std::uint64_t payload_bytes) noexcept {
    messages.add(n);
    bytes.add(payload_bytes);
    polls.add(1);
  }
  [[nodiscard]] SourceStats snapshot() const noexcept {
    return SourceStats{messages.get(), bytes.get(), polls.get(), rejects.get(), drops.get(), errors.get(), {}};
  }
};

/// What happened to one message of a source that wants_outcomes().
enum class Outcome : std::uint8_t {
  Processed,  ///< queued on its valve lane
  Collision,  ///< its lane was full and the lane's collision policy applied (drop, spin, conflate, disconnect)
  Rejected,   ///< payload + key larger than a valve slot: never queued (counted `oversize`)
  Dropped,    ///< the pipeline routed it nowhere (Route::Action::Drop): never offered to a lane
};

/// The verdict on one emitted message and when it was given.
struct PushOutcome {
  std::uint64_t tsc = 0;  ///< TscClock::ticks() right after the engine answered (the acceptance tick)
  Outcome outcome = Outcome::Processed;
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
  /// Read once by the runtime when the source is added: true to receive on_outcomes() calls.
  [[nodiscard]] virtual bool wants_outcomes() const noexcept { return false; }
  /// The verdicts on messages the pipeline emitted from the burst being processed (see the header
  /// comment). `outcomes[i]` belongs to `messages[i]`; both spans have the same size.
  virtual void on_outcomes(std::span<const Message> messages, std::span<const PushOutcome> outcomes) noexcept {
    (void)messages;
    (void)outcomes;
  }
  /// True once the source has nothing more to give (end of a capture, end of session).
  [[nodiscard]] virtual bool finished() const noexcept { return false; }
  /// A descriptor that is readable while poll() has work, for the idle worker to wait on (see the
  /// header comment); -1 for none. Called on the owning worker's thread right before each of its
  /// sleeps, while the source runs: a source whose input arrives on its own threads may arm its
  /// wake-up here (the nats source does), so that it costs nothing while the worker is busy.
  [[nodiscard]] virtual int wake_fd() noexcept { return -1; }

  [[nodiscard]] virtual SourceStats stats() const noexcept = 0;
};

}  // namespace hypergate::adapter
