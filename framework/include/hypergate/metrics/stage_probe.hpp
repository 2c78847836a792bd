#pragma once
// Per-stage latency recording on the hot path: the stage set every worker records, and StageProbe, the
// worker-owned front end that batches samples into one IntervalRecorder per stage.
//
// THE STAGES (one HdrHistogram per stage per worker, nanoseconds; tags in interval logs, `stage`
// label in /metrics). A message's rx time is the kernel or NIC receive stamp when its source has one
// (udp: SO_TIMESTAMPNS mapped onto the TSC), else the TSC read when its burst was polled.
//   rx        rx time -> poll returned                          every message the source returned
//   decode    start of a frame/message -> decoded view built    sampled bursts (trace_every), per message
//   pipeline  decoded -> validators, transforms, router done    sampled, per message (itch: the order book)
//   store     the Hyperion put of a top-of-book record          sampled, per put (pipelines with a store)
//   push      valve engine push of an emitted batch             every batch, the batch's mean per message
//   process   poll returned -> pipeline done (all of the above) every burst, once per burst
//   valve     pushed into a lane -> taken by every sink         every drained batch, its oldest message's
//                                                               wait weighted by the batch size (an upper bound)
//   send      Sink::send() of a burst                           every burst, its mean per message
//   wire      rx time -> sink send returned (wire to wire)      every message, per sink it went to
// Sampled stages cost two TSC reads per message, so they run on one burst in `trace_every` (default 64;
// 1 = every burst, 0 = never); the others cost a subtraction and a buffered record per message.
//
// CONTRACT
// - One StageProbe per worker, used only by that worker's thread (the single writer of its recorders).
//   Pipelines receive it through PipelineBase::attach_probe() before the runtime starts.
// - Samples are buffered (kBuffer per stage) and handed to the recorder with record_batch(): one
//   phaser RMW per kBuffer samples. flush() hands over the rest; the worker calls it once per loop
//   iteration that did work, so a sample reaches the stats thread within one iteration.
// - No allocation, lock or syscall: the buffers are members, the recorders are preallocated.
#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

#include "hypergate/core/burst.hpp"
#include "hypergate/core/clock.hpp"
#include "hypergate/metrics/interval_recorder.hpp"

namespace hypergate::metrics {

enum class Stage : std::uint8_t { Rx, Decode, Pipeline, Store, Push, Process, Valve, Send, Wire };
inline constexpr std::size_t kStageCount = 9;

/// Stage names, as tags and label values. Index = Stage.
inline constexpr std::array<std::string_view, kStageCount> kStageNames = {
    "rx", "decode", "pipeline", "store", "push", "process", "valve", "send", "wire"};

[[nodiscard]] constexpr std::string_view stage_name(Stage s) noexcept {
  return kStageNames[static_cast<std::size_t>(s)];
}

/// Upper bounds (ns) of the fixed Prometheus histogram buckets every stage is exposed with (plus
/// +Inf). One layout for every stage, worker and instance, so buckets sum across all of them.
inline constexpr std::array<std::uint64_t, 20> kPrometheusBucketsNs = {
    100,       250,       500,        1'000,      2'500,      5'000,       10'000,
    25'000,    50'000,    100'000,    250'000,    500'000,    1'000'000,   2'500'000,
    5'000'000, 10'000'000, 25'000'000, 100'000'000, 1'000'000'000, 10'000'000'000};

/// Highest value the stage histograms track: 60 s (anything longer is an outage, clamped and counted).
inline constexpr std::uint64_t kStageHighestNs = 60'000'000'000ULL;
inline constexpr int kStageDigits = 3;

class StageProbe {
 public:
  static constexpr std::size_t kBuffer = 64;

  /// `recorders[s]` records stage s; each must outlive the probe. `trace_every`: see the header.
  StageProbe(std::array<IntervalRecorder*, kStageCount> recorders, std::uint32_t trace_every) noexcept
      : recorders_(recorders), trace_every_(trace_every), clock_(&TscClock::instance()) {}
  StageProbe(const StageProbe&) = delete;
  StageProbe& operator=(const StageProbe&) = delete;

  /// Starts a burst; decides whether its sampled stages are traced.
  void begin_burst() noexcept {
    tracing_ = trace_every_ != 0 && ++bursts_ >= trace_every_;
    if (tracing_) bursts_ = 0;
  }
  /// True while a traced burst runs: pipelines then time their sampled stages.
  [[nodiscard]] bool tracing() const noexcept { return tracing_; }
  /// Ends the burst's tracing (samples stay buffered until flush()).
  void end_burst() noexcept { tracing_ = false; }
  /// Hands every buffered sample to the recorders (the worker calls it once per loop iteration that
  /// did work, and before it exits).
  void flush() noexcept {
    for (std::size_t s = 0; s < kStageCount; ++s) flush(s);
  }

  /// Runs `process()` over a polled burst the way every worker records it: a message without an rx
  /// time gets `poll_tsc` (the TSC read when poll() returned), each message's rx -> poll is an `rx`
  /// sample, the burst's sampled stages are traced if it is its turn, and the whole call is one
  /// `process` sample. One place for this, so the runtime and the benchmarks measure the same thing.
  template <class Process>
  void record_burst(Burst<>& in, std::uint64_t poll_tsc, Process&& process) noexcept {
    begin_burst();
    for (Message& m : in) {
      if (m.rx_tsc == 0) m.rx_tsc = poll_tsc;
      add_ticks(Stage::Rx, m.rx_tsc, poll_tsc);
    }
    process();
    end_burst();
    add_ticks(Stage::Process, poll_tsc, TscClock::ticks());
  }

  /// One sample of `stage`: the TSC interval [begin, end] (0 if end < begin).
  void add_ticks(Stage stage, std::uint64_t begin, std::uint64_t end) noexcept {
    add_ns(stage, clock_->elapsed_ns(begin, end));
  }
  /// One sample of `stage`, in nanoseconds.
  void add_ns(Stage stage, std::uint64_t ns) noexcept {
    Buffer& b = buffers_[static_cast<std::size_t>(stage)];
    b.values[b.n] = ns;
    if (++b.n == kBuffer) flush(static_cast<std::size_t>(stage));
  }
  /// `count` samples of the same value (a batch's mean, or an upper bound for the whole batch).
  void add_ns_n(Stage stage, std::uint64_t ns, std::uint64_t count) noexcept {
    if (count != 0) recorders_[static_cast<std::size_t>(stage)]->record_n(ns, count);
  }
  [[nodiscard]] const TscClock& clock() const noexcept { return *clock_; }

 private:
  struct Buffer {
    std::array<std::uint64_t, kBuffer> values{};
    std::size_t n = 0;
  };
  void flush(std::size_t s) noexcept {
    Buffer& b = buffers_[s];
    if (b.n == 0) return;
    recorders_[s]->record_batch(std::span<const std::uint64_t>(b.values.data(), b.n));
    b.n = 0;
  }

  std::array<IntervalRecorder*, kStageCount> recorders_;
  std::uint32_t trace_every_;
  std::uint32_t bursts_ = 0;
  bool tracing_ = false;
  const TscClock* clock_;
  std::array<Buffer, kStageCount> buffers_{};
};

}  // namespace hypergate::metrics
