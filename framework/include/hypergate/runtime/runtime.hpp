#pragma once
// Runtime: one pinned, named worker thread per configured core, each running a batch loop, plus a stats
// thread. It owns the sources, pipelines, sinks and the valve engine that joins them.
//
// A worker's loop (one iteration = one batch, no allocation, lock or syscall per message):
//   1. poll each of its sources once (one Burst<32>), run the source's pipeline over it; the pipeline
//      emits (Message, Route) pairs that the worker's Downstream pushes into the valve engine (producer
//      index = worker index: one ring per (worker, lane)), then the burst is released to the source;
//      A push that meets a full Spin lane drains this worker's own lanes while it waits (valve SpinWork):
//      every worker both produces and consumes, so two workers spinning on each other's full lanes free
//      each other instead of both waiting out spin_ns;
//   2. pump its conflation tables (conflate lanes only);
//   3. drain the lanes it consumes (lane l belongs to worker l % workers) into ITS OWN instance of each
//      sink of the message's route mask (one sink instance per worker: a sink is only called from one
//      thread), and flush those sinks when anything was sent;
//   4. housekeeping on a TSC check ([[unlikely]], every housekeeping_ns): publish counters, stop an
//      adapter whose error count rises by more than error_limit within error_window_ns;
//   5. idle when the iteration did nothing: Busy = cpu_relax and poll again; Backoff = spin_loops empty
//      iterations, then pause_loops iterations with cpu_relax, then sleeps of at most sleep_ns on the
//      worker's eventfd (woken early by request_stop() or by a producer that pushed while it slept)
//      and on the wake_fd() of each of its running sources and sinks (woken as soon as input is ready:
//      a datagram, a connection, an io_uring completion). A descriptor that reported an error state
//      (POLLERR/POLLHUP/POLLNVAL) on the last sleep, with no work done since, is left out of the next
//      one (counted: wake_errors), so a broken adapter costs one wake-up per sleep, not a spinning core.
//
// Shutdown: request_stop() (async-signal-safe: an atomic store and eventfd writes) makes every worker
// stop its sources, flush its conflation tables, and keep draining until every worker has stopped
// producing and its lanes are empty — or until drain_deadline_ns has passed since it saw the request;
// then it flushes and stops its sinks. Messages abandoned at the deadline stay visible as in_flight in
// the report. Without a stop request the runtime also ends when every source is finished() (or failed)
// and everything is drained. wait() returns then; report() can be called at any time, from any thread.
//
// Failure isolation: a source or sink whose start() fails, or whose error counter rises by more than
// error_limit within error_window_ns, is stopped and reported (state Failed with the reason); the
// others keep running. Messages routed to a failed or unknown sink are counted `undeliverable` and leave
// their lane (they do not block it).
//
// Statistics: every counter has one writer (its worker) and is a relaxed atomic; the stats thread (and
// report()) read them without locks on the hot path. Per-worker stage latencies (rx, decode, pipeline,
// store, push, process, valve, send, wire: metrics/stage_probe.hpp) go through the worker's
// metrics::StageProbe into one metrics::IntervalRecorder per stage (writer = the worker); the stats
// thread swaps the intervals out, merges them into per-worker totals and, with Options::on_interval,
// hands each interval merged over the workers to the listener (interval logs).
#include <array>
#include <csignal>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "hypergate/adapter/sink.hpp"
#include "hypergate/adapter/source.hpp"
#include "hypergate/core/status.hpp"
#include "hypergate/metrics/hdr_histogram.hpp"
#include "hypergate/metrics/stage_probe.hpp"
#include "hypergate/route/route.hpp"
#include "hypergate/route/sink_health.hpp"
#include "hypergate/valve/options.hpp"
#include "hypergate/valve/valve_engine.hpp"

namespace hypergate::runtime {

enum class IdlePolicy : std::uint8_t { Busy, Backoff };

struct StageInterval;

struct Options {
  unsigned workers = 1;              ///< 1..64; also the number of valve producers and consumers
  std::vector<int> cores;            ///< worker w is pinned to cores[w % cores.size()]; empty: not pinned
  IdlePolicy idle = IdlePolicy::Backoff;
  std::size_t slot_bytes = valve::kDefaultSlotBytes;  ///< 128, 256, 512, 1024 or 2048
  valve::Options valves;             ///< producers/consumers are overwritten with `workers`
  std::uint32_t spin_loops = 256;    ///< Backoff: empty iterations before pausing
  std::uint32_t pause_loops = 4096;  ///< Backoff: iterations with cpu_relax before sleeping
  std::uint64_t sleep_ns = 200'000;  ///< Backoff: longest single sleep (bounded: sources are polled)
  std::uint64_t drain_deadline_ns = 2'000'000'000;
  std::uint64_t stats_interval_ns = 1'000'000'000;
  std::uint64_t housekeeping_ns = 1'000'000;
  std::uint64_t error_limit = 1000;
  std::uint64_t error_window_ns = 1'000'000'000;
  /// Health flags read by failover routing: the runtime marks sink i unhealthy when any of its
  /// instances fails (start error, or more than error_limit errors within error_window_ns).
  /// Not owned; may be null. Must outlive the runtime.
  route::SinkHealth* health = nullptr;
  std::string thread_name = "hg";    ///< workers are named "<name>-w<i>", the stats thread "<name>-stats"
  /// Sampled stages (decode, pipeline, store; metrics/stage_probe.hpp) are timed on one burst in
  /// trace_every per worker; 1 = every burst, 0 = never.
  std::uint32_t trace_every = 64;
  /// When set, the stats thread calls it every interval_ns with the stage histograms of the interval
  /// just ended, merged over the workers (interval logs: `--hlog`), and once more from wait() for the
  /// last partial interval. Runs on the stats thread (or the thread calling wait()), never on a worker.
  std::function<void(const StageInterval&)> on_interval;
  std::uint64_t interval_ns = 1'000'000'000;
};

/// One interval of stage histograms (Options::on_interval).
struct StageInterval {
  std::uint64_t start_epoch_ns = 0;  ///< CLOCK_REALTIME at the interval's start
  std::uint64_t end_epoch_ns = 0;
  /// Index = metrics::Stage; each histogram holds exactly the samples recorded in the interval.
  std::span<const metrics::HdrHistogram> stages;
};

/// Checks the options (workers, slot size, valve options); the Error names the field.
[[nodiscard]] Result<void> validate(const Options& options);

enum class AdapterState : std::uint8_t { Created, Running, Finished, Failed, Stopped };
[[nodiscard]] std::string_view to_string(AdapterState s) noexcept;

struct LatencySummary {
  std::uint64_t count = 0;
  std::uint64_t p50_ns = 0;
  std::uint64_t p99_ns = 0;
  std::uint64_t p999_ns = 0;
  std::uint64_t max_ns = 0;
};

/// One stage merged over every worker (metrics/stage_probe.hpp lists the stages).
struct StageReport {
  std::string_view name;
  std::uint64_t count = 0;
  std::uint64_t min_ns = 0, p50_ns = 0, p90_ns = 0, p99_ns = 0, p999_ns = 0, p9999_ns = 0, max_ns = 0;
  double mean_ns = 0.0;
  /// Cumulative counts per metrics::kPrometheusBucketsNs bound: samples whose bucket's lowest
  /// equivalent value is <= the bound (exact to the histogram's 3 significant digits); +Inf = count.
  std::array<std::uint64_t, metrics::kPrometheusBucketsNs.size()> le_counts{};
};

struct WorkerReport {
  unsigned worker = 0;
  int core = -1;                     ///< -1: not pinned
  std::uint64_t loops = 0;           ///< batch-loop iterations
  std::uint64_t busy_loops = 0;      ///< iterations that did some work
  std::uint64_t sleeps = 0;          ///< bounded sleeps on the eventfd and the adapters' wake_fd()s
  std::uint64_t wakeups = 0;         ///< sleeps an adapter's wake_fd() ended (input became ready)
  std::uint64_t wake_errors = 0;     ///< wake_fd()s left out of a sleep for an error state (POLLERR/HUP/NVAL)
  std::uint64_t polled = 0;          ///< messages polled from its sources
  std::uint64_t pushed = 0;          ///< messages offered to the valve engine (Route::Action::Deliver)
  std::uint64_t collisions = 0;
  std::uint64_t rejected = 0;        ///< oversize
  std::uint64_t route_drops = 0;     ///< emitted with Route::Action::Drop
  std::uint64_t drained = 0;         ///< messages that left its lanes
  LatencySummary poll_to_pipeline;
  LatencySummary push_to_drain;
};

struct SourceReport {
  std::string name;
  std::string type;
  std::string pipeline;
  unsigned worker = 0;
  AdapterState state = AdapterState::Created;
  std::string error;                 ///< why it failed (empty otherwise)
  adapter::SourceStats stats;
  route::PipelineCounters pipeline_counters;
};

struct SinkInstanceReport {
  unsigned worker = 0;
  AdapterState state = AdapterState::Created;
  std::string error;
  adapter::SinkStats stats;
};

struct SinkReport {
  std::string name;
  std::string type;
  adapter::SinkStats stats;          ///< summed over the instances
  std::uint64_t undeliverable = 0;   ///< messages for this sink that met a failed instance
  std::vector<SinkInstanceReport> instances;
};

struct LaneReport {
  unsigned lane = 0;
  unsigned consumer = 0;
  valve::LaneCounters counters;
};

struct Report {
  bool started = false;
  bool finished = false;             ///< wait() has returned
  bool stop_requested = false;
  bool deadline_hit = false;         ///< some worker gave up draining at the deadline
  std::uint64_t elapsed_ns = 0;
  std::uint64_t unknown_sink_messages = 0;  ///< routed to a sink id that does not exist
  std::vector<WorkerReport> workers;
  std::vector<SourceReport> sources;
  std::vector<SinkReport> sinks;
  std::vector<LaneReport> lanes;
  valve::LaneCounters valve_totals;
  std::vector<StageReport> stages;   ///< index = metrics::Stage
  /// True when nothing is in flight: in == out + dropped + conflated.
  [[nodiscard]] bool drained() const noexcept { return valve_totals.in_flight == 0; }
  /// A human-readable table (the gateway prints it at exit).
  [[nodiscard]] std::string to_text() const;
};

/// The per-stage latency table `run` and `replay` print at exit (stages without samples are left out).
[[nodiscard]] std::string format_stage_table(std::span<const StageReport> stages);

class Runtime {
 public:
  explicit Runtime(Options options);
  ~Runtime();  ///< requests stop and waits if still running
  Runtime(const Runtime&) = delete;
  Runtime& operator=(const Runtime&) = delete;

  /// Adds a source owned by `worker` with its pipeline. Returns the source id (Message::source_id).
  /// Cold path; only before start().
  Result<std::uint16_t> add_source(std::string name, unsigned worker, std::unique_ptr<adapter::Source> source,
                                   std::unique_ptr<route::PipelineBase> pipeline);
  /// Adds a sink with one instance per worker (instances.size() == workers). Returns the sink id: the bit
  /// of Route::sinks that selects it. Cold path; only before start(); at most 64 sinks.
  Result<std::uint16_t> add_sink(std::string name, std::vector<std::unique_ptr<adapter::Sink>> instances);

  /// Builds the valve engine and starts the workers and the stats thread. Adapters are started by their
  /// workers, on their threads; a failing start() is reported, not returned.
  Result<void> start();
  /// Async-signal-safe: stores an atomic and writes the workers' eventfds.
  void request_stop() noexcept;
  /// Blocks until the workers have ended (see the header comment), then stops the stats thread.
  void wait();
  [[nodiscard]] bool finished() const noexcept;
  /// A snapshot of every counter; safe from any thread at any time.
  [[nodiscard]] Report report() const;
  /// The pipeline of source `source_id` (as returned by add_source), or null. The object lives as long
  /// as the runtime; what it exposes to other threads (counters(), store() readers) is safe to use
  /// while the workers run.
  [[nodiscard]] const route::PipelineBase* pipeline(std::uint16_t source_id) const noexcept;
  [[nodiscard]] const Options& options() const noexcept;

  /// Valve lane controls (any thread): whether a disconnect lane group is disconnected, and reconnecting it.
  [[nodiscard]] bool lane_disconnected(unsigned lane) const noexcept;
  void reconnect_lane(unsigned lane) noexcept;

  struct State;  // implementation (runtime.cpp)

 private:
  std::unique_ptr<State> state_;
};

/// Installs SIGINT and SIGTERM handlers that call runtime.request_stop() (one runtime per process; the
/// previous handlers are restored by the returned guard's destructor).
class StopSignals {
 public:
  explicit StopSignals(Runtime& runtime);
  ~StopSignals();
  StopSignals(const StopSignals&) = delete;
  StopSignals& operator=(const StopSignals&) = delete;

 private:
  struct sigaction old_int_ {};
  struct sigaction old_term_ {};
};

}  // namespace hypergate::runtime
