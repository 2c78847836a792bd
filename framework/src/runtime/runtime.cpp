// Runtime implementation: worker batch loops, shutdown, failure isolation, stats thread.
// See hypergate/runtime/runtime.hpp for the contract.
#include "hypergate/runtime/runtime.hpp"

#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <bit>
#include <cerrno>
#include <cstring>
#include <mutex>
#include <system_error>
#include <thread>
#include <utility>
#include <variant>

#include <fmt/format.h>

#include "hypergate/core/cache.hpp"
#include "hypergate/core/clock.hpp"
#include "hypergate/core/counter.hpp"
#include "hypergate/core/eventfd.hpp"
#include "hypergate/metrics/hdr_histogram.hpp"
#include "hypergate/metrics/interval_recorder.hpp"
#include "hypergate/metrics/stage_probe.hpp"

namespace hypergate::runtime {

std::string_view to_string(AdapterState s) noexcept {
  switch (s) {
    case AdapterState::Created: return "created";
    case AdapterState::Running: return "running";
    case AdapterState::Finished: return "finished";
    case AdapterState::Failed: return "failed";
    case AdapterState::Stopped: return "stopped";
  }
  return "unknown";
}

Result<void> validate(const Options& o) {
  if (o.workers < 1 || o.workers > 64)
    return Error{Status::InvalidArgument, "gateway.workers must be in 1..64, got " + std::to_string(o.workers)};
  if (o.slot_bytes != 128 && o.slot_bytes != 256 && o.slot_bytes != 512 && o.slot_bytes != 1024 &&
      o.slot_bytes != 2048)
    return Error{Status::InvalidArgument,
                 "valves.slot_bytes must be 128, 256, 512, 1024 or 2048, got " + std::to_string(o.slot_bytes)};
  if (o.thread_name.empty() || o.thread_name.size() > 8)
    return Error{Status::InvalidArgument, "thread_name must have 1..8 characters (Linux names are 15 bytes)"};
  valve::Options v = o.valves;
  v.producers = v.consumers = o.workers;
  return valve::validate(v);
}

namespace {

using metrics::Stage;
constexpr std::size_t kStages = metrics::kStageCount;

metrics::HdrHistogram make_stage_histogram() {
  return metrics::HdrHistogram(1, metrics::kStageHighestNs, metrics::kStageDigits);
}

std::uint64_t realtime_ns() noexcept {
  timespec ts{};
  ::clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<std::uint64_t>(ts.tv_sec) * 1'000'000'000ull + static_cast<std::uint64_t>(ts.tv_nsec);
}

// Error-rate watch of one adapter (owner thread only).
struct ErrorWindow {
  std::uint64_t window_end = 0;
  std::uint64_t errors_at_start = 0;
};

struct SourceEntry {
  std::string name;
  std::string type;
  std::string pipeline_name;
  unsigned worker = 0;
  std::uint16_t id = 0;
  std::unique_ptr<adapter::Source> source;
  std::unique_ptr<route::PipelineBase> pipeline;
  bool wants_outcomes = false;  // Source::wants_outcomes(), read once by add_source()
  // release on every store: pairs with the acquire load in report(), which then may read `error`
  // (written once, before the Failed store, never again).
  std::atomic<AdapterState> state{AdapterState::Created};
  std::string error;
  ErrorWindow window;  // owner only
};

struct SinkInstance {
  std::unique_ptr<adapter::Sink> sink;
  std::uint16_t sink_id = 0;           // index of its SinkEntry (bit in Route::sinks)
  route::SinkHealth* health = nullptr;  // Options::health
  std::atomic<AdapterState> state{AdapterState::Created};  // as SourceEntry::state
  std::string error;
  Counter undeliverable;
  bool live = false;  // owner only: Running
  ErrorWindow window;  // owner only
};

struct SinkEntry {
  std::string name;
  std::string type;
  std::vector<std::unique_ptr<SinkInstance>> instances;  // one per worker
};

struct alignas(kNoFalseSharing) Worker {
  unsigned index = 0;
  int core = -1;
  int efd = -1;
  std::thread thread;
  // Set by the worker around its bounded sleep; producers read it (relaxed: a stale value delays a
  // wake-up by at most one sleep_ns, never loses a message).
  std::atomic<bool> sleeping{false};
  Counter loops, busy_loops, sleeps, wakeups, wake_errors, polled, pushed, collisions, rejected, route_drops, drained, unknown_sink;
  std::vector<SourceEntry*> sources;
  // One recorder per stage (writer = this worker, through `probe`); index = metrics::Stage.
  std::array<std::unique_ptr<metrics::IntervalRecorder>, kStages> stage_rec;
  std::unique_ptr<metrics::StageProbe> probe;
  // Cumulative histograms, merged from the recorders by the stats thread / report() under stats_mutex.
  std::vector<metrics::HdrHistogram> stage_total;
};
static_assert(alignof(Worker) == kNoFalseSharing, "workers' counters never share a line");

using EngineVariant =
    std::variant<std::monostate, std::unique_ptr<valve::ValveEngine<128>>, std::unique_ptr<valve::ValveEngine<256>>,
                 std::unique_ptr<valve::ValveEngine<512>>, std::unique_ptr<valve::ValveEngine<1024>>,
                 std::unique_ptr<valve::ValveEngine<2048>>>;

template <std::size_t B>
Result<void> make_engine(EngineVariant& out, const valve::Options& o) {
  auto e = valve::ValveEngine<B>::create(o);
  if (!e) return e.error();
  out = std::move(e.value());
  return {};
}

// Descriptors one idle worker waits on: its eventfd and its adapters' wake_fd()s.
constexpr std::size_t kMaxWakeFds = 64;

void wake(int efd) noexcept { signal_eventfd(efd); }   // async-signal-safe: one write(2)

}  // namespace

struct Runtime::State {
  Options opt;
  std::vector<std::unique_ptr<SourceEntry>> sources;
  std::vector<std::unique_ptr<SinkEntry>> sinks;
  std::vector<std::unique_ptr<Worker>> workers;
  EngineVariant engine;

  // release by request_stop(): pairs with the acquire load at the top of each worker iteration.
  std::atomic<bool> stop{false};
  // acq_rel: a producer's increment publishes its last pushes; pairs with the acquire load in the
  // consumers' exit check (which then reads ring indices that include those pushes).
  std::atomic<unsigned> producers_done{0};
  std::atomic<bool> deadline_hit{false};  // relaxed: a report flag
  // release after the workers (and their eventfds) exist: pairs with the acquire in request_stop().
  std::atomic<bool> wake_ready{false};
  std::atomic<bool> started{false};
  std::atomic<bool> finished{false};
  std::uint64_t start_ns = 0;
  std::atomic<std::uint64_t> end_ns{0};

  std::thread stats_thread;
  int stats_efd = -1;
  std::atomic<bool> stats_stop{false};
  mutable std::mutex stats_mutex;  // stats thread and report() only; never taken by a worker
  // Under stats_mutex: the swap buffer, the interval being accumulated for on_interval (merged over
  // workers) and its start, and a merge buffer for report().
  mutable metrics::HdrHistogram swap_buf = make_stage_histogram();
  mutable std::vector<metrics::HdrHistogram> pending;
  mutable metrics::HdrHistogram merge_buf = make_stage_histogram();
  std::uint64_t interval_start_epoch_ns = 0;

  void collect() const {
    const std::lock_guard<std::mutex> lock(stats_mutex);
    collect_locked();
  }
  void collect_locked() const {
    for (const auto& w : workers) {
      for (std::size_t s = 0; s < kStages; ++s) {
        w->stage_rec[s]->swap(swap_buf);
        if (swap_buf.total_count() == 0) continue;
        (void)w->stage_total[s].merge(swap_buf);  // same layout: cannot fail
        if (opt.on_interval) (void)pending[s].merge(swap_buf);
      }
    }
  }
  // Hands the interval accumulated so far to Options::on_interval and starts the next one.
  void emit_interval() {
    if (!opt.on_interval) return;
    const std::lock_guard<std::mutex> lock(stats_mutex);
    collect_locked();
    StageInterval iv;
    iv.start_epoch_ns = interval_start_epoch_ns;
    iv.end_epoch_ns = realtime_ns();
    iv.stages = std::span<const metrics::HdrHistogram>(pending.data(), pending.size());
    opt.on_interval(iv);
    for (auto& h : pending) h.reset();
    interval_start_epoch_ns = iv.end_epoch_ns;
  }

  template <class F>
  decltype(auto) with_engine(F&& f) const {
    return std::visit(
        [&](const auto& e) {
          if constexpr (std::is_same_v<std::decay_t<decltype(e)>, std::monostate>) {
            return f(static_cast<valve::ValveEngine<256>*>(nullptr));
          } else {
            return f(e.get());
          }
        },
        engine);
  }
};

namespace {

using State = Runtime::State;

void fail_source(SourceEntry& se, std::string why) noexcept {
  se.source->stop();
  se.error = std::move(why);
  se.state.store(AdapterState::Failed, std::memory_order_release);  // pairs with report()'s acquire
}

void mark_unhealthy(const SinkInstance& si) noexcept {
  if (si.health != nullptr) si.health->set_healthy(si.sink_id, false);
}

void fail_sink(SinkInstance& si, std::string why) noexcept {
  mark_unhealthy(si);
  si.live = false;
  si.sink->stop();
  si.error = std::move(why);
  si.state.store(AdapterState::Failed, std::memory_order_release);  // pairs with report()'s acquire
}

// Returns true when the adapter's error count rose by more than the limit within the current window.
bool too_many_errors(ErrorWindow& w, std::uint64_t errors, std::uint64_t now, std::uint64_t window_ticks,
                     std::uint64_t limit) noexcept {
  if (now >= w.window_end) {
    w.window_end = now + window_ticks;
    w.errors_at_start = errors;
    return false;
  }
  return errors - w.errors_at_start > limit;
}

// The runtime's Downstream: what a pipeline emits goes into the valve engine, producer = this worker.
// While a Spin lane is full, the worker drains its own lanes (SpinWork): two workers spinning on each
// other's full lanes then free each other instead of both waiting out spin_ns.
template <class Engine, class SpinWork>
class ValveDownstream final : public route::Downstream {
 public:
  ValveDownstream(Engine& engine, Worker& worker, SpinWork& spin_work) noexcept
      : engine_(engine), worker_(worker), spin_work_(spin_work) {}
  void deliver(std::span<const Message> msgs, std::span<const route::Route> routes) noexcept override {
    if (observer_ != nullptr) [[unlikely]] {
      deliver_observed(msgs, routes);
      return;
    }
    const std::uint64_t t0 = TscClock::ticks();
    const valve::BurstOutcome o = engine_.push_burst(worker_.index, msgs, routes, spin_work_);
    const std::size_t n = std::min(msgs.size(), routes.size());
    record_push(t0, n);
    count(n, o);
  }
  std::size_t take_pushed() noexcept { return std::exchange(pushed_since_wake_, 0); }
  /// While set, every delivered batch is pushed message by message and its verdicts go to `source`
  /// (Source::on_outcomes); null: the plain batch path. Set around the process() of such a source.
  void observe(adapter::Source* source) noexcept { observer_ = source; }

 private:
  // The push stage: the batch's mean per message, weighted by its size.
  void record_push(std::uint64_t t0, std::size_t n) noexcept {
    if (n == 0) return;
    metrics::StageProbe& p = *worker_.probe;
    p.add_ns_n(Stage::Push, p.clock().elapsed_ns(t0, TscClock::ticks()) / n, n);
  }

  void count(std::size_t n, const valve::BurstOutcome& o) noexcept {
    worker_.pushed.add(n - o.skipped);
    worker_.route_drops.add(o.skipped);
    worker_.collisions.add(o.collisions);
    worker_.rejected.add(o.rejected);
    pushed_since_wake_ += n - o.skipped;
  }

  // One push per message: push_burst() only counts verdicts per batch, and a source that answers each
  // message needs to know which one collided. The tick is read right after the engine answered, and
  // that tick is also the next message's push time (one clock read per message).
  void deliver_observed(std::span<const Message> msgs, std::span<const route::Route> routes) noexcept {
    const std::size_t total = std::min(msgs.size(), routes.size());
    const std::uint64_t t0 = TscClock::ticks();
    std::uint64_t now = t0;
    for (std::size_t base = 0; base < total; base += kDefaultBurst) {
      const std::size_t n = std::min<std::size_t>(kDefaultBurst, total - base);
      valve::BurstOutcome sum;
      for (std::size_t i = 0; i < n; ++i) {
        const std::size_t k = base + i;
        adapter::PushOutcome& out = outcomes_[i];
        if (routes[k].action != route::Action::Deliver) {
          ++sum.skipped;
          out.outcome = adapter::Outcome::Dropped;
          out.tsc = now = TscClock::ticks();
          continue;
        }
        const valve::Verdict v = engine_.push(worker_.index, msgs[k], routes[k], now, spin_work_);
        out.tsc = now = TscClock::ticks();
        switch (v) {
          case valve::Verdict::Processed:
            out.outcome = adapter::Outcome::Processed;
            ++sum.processed;
            break;
          case valve::Verdict::Collision:
            out.outcome = adapter::Outcome::Collision;
            ++sum.collisions;
            break;
          case valve::Verdict::Rejected:
            out.outcome = adapter::Outcome::Rejected;
            ++sum.rejected;
            break;
        }
      }
      count(n, sum);
      observer_->on_outcomes(msgs.subspan(base, n), std::span<const adapter::PushOutcome>(outcomes_.data(), n));
    }
    record_push(t0, total);
  }

  Engine& engine_;
  Worker& worker_;
  SpinWork& spin_work_;
  std::size_t pushed_since_wake_ = 0;
  adapter::Source* observer_ = nullptr;
  std::array<adapter::PushOutcome, kDefaultBurst> outcomes_{};
};

// The valve consumer of one worker: its own instance of every sink.
template <class SlotT>
struct SinkFanout {
  std::vector<SinkInstance*> mine;  // by sink id
  Worker* worker = nullptr;
  const TscClock* clock = nullptr;
  std::uint64_t sent_mask = 0;  // sinks sent to since the last flush

  std::size_t send(unsigned sink, const Burst<>& b) noexcept {
    if (sink >= mine.size()) [[unlikely]] {
      worker->unknown_sink.add(b.size());
      return b.size();
    }
    SinkInstance* si = mine[sink];
    if (!si->live) [[unlikely]] {
      si->undeliverable.add(b.size());
      return b.size();
    }
    sent_mask |= 1ull << sink;
    const std::uint64_t t0 = TscClock::ticks();
    const std::size_t accepted = si->sink->send(b);
    const std::uint64_t t1 = TscClock::ticks();
    metrics::StageProbe& p = *worker->probe;
    if (accepted != 0) p.add_ns_n(Stage::Send, clock->elapsed_ns(t0, t1) / accepted, accepted);
    // Wire to wire: every message the sink took, from its rx time (never 0: the runtime stamps the
    // poll time on messages that arrive without one).
    for (std::size_t i = 0; i < accepted && i < b.size(); ++i) p.add_ticks(Stage::Wire, b[i].rx_tsc, t1);
    return accepted;
  }
  void drained(const SlotT* slots, std::size_t n) noexcept {
    // One sample per batch: the oldest message's wait (slots are FIFO), weighted by the batch size.
    worker->probe->add_ns_n(Stage::Valve, clock->elapsed_ns(slots[0].h.push_tsc, TscClock::ticks()), n);
  }
};

void setup_thread(const Options& opt, Worker& w) {
  const std::string name = fmt::format("{}-w{}", opt.thread_name, w.index);
  pthread_setname_np(pthread_self(), name.c_str());
  if (w.core >= 0) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(w.core, &set);
    if (pthread_setaffinity_np(pthread_self(), sizeof set, &set) != 0) w.core = -1;  // reported as unpinned
  }
}

template <class Engine>
void run_worker(State& st, Worker& w, Engine& eng) {
  using SlotT = typename Engine::SlotType;
  const Options& opt = st.opt;
  const TscClock& clock = TscClock::instance();
  setup_thread(opt, w);

  // Adapters start on their own worker's thread: sinks first, so that nothing is polled without them.
  SinkFanout<SlotT> fan;
  fan.worker = &w;
  fan.clock = &clock;
  for (auto& s : st.sinks) {
    SinkInstance& si = *s->instances[w.index];
    fan.mine.push_back(&si);
    auto r = si.sink->start();
    if (r) {
      si.live = true;
      si.state.store(AdapterState::Running, std::memory_order_release);
    } else {
      si.error = "start failed: " + r.error().message;
      mark_unhealthy(si);
      si.state.store(AdapterState::Failed, std::memory_order_release);
    }
  }
  for (SourceEntry* se : w.sources) {
    auto r = se->source->start();
    if (r) {
      se->state.store(AdapterState::Running, std::memory_order_release);
    } else {
      se->error = "start failed: " + r.error().message;
      se->state.store(AdapterState::Failed, std::memory_order_release);
    }
  }

  metrics::StageProbe& probe = *w.probe;
  auto drain_own_lanes = [&eng, &w, &fan]() noexcept { w.drained.add(eng.drain(w.index, fan)); };
  ValveDownstream<Engine, decltype(drain_own_lanes)> down(eng, w, drain_own_lanes);
  route::Emitter emitter(down);
  Burst<> in;
  const unsigned workers = opt.workers;
  const std::uint64_t hk_ticks = clock.from_ns(opt.housekeeping_ns);
  const std::uint64_t window_ticks = clock.from_ns(opt.error_window_ns);
  std::uint64_t next_hk = TscClock::ticks() + hk_ticks;
  std::uint64_t deadline = 0;
  bool stopping = false;
  bool producing = true;
  bool done_producing = false;
  std::uint32_t idle = 0;
  // Adapters' wake descriptors that reported an error state (POLLERR, POLLHUP, POLLNVAL: ppoll reports
  // them whatever was asked for, and they usually stay) on the last sleep, and whether any work was
  // done since. Idle path only.
  std::array<int, kMaxWakeFds> error_fds{};
  std::size_t error_n = 0;
  bool worked_since_sleep = false;

  for (;;) {
    std::size_t work = 0;
    if (!stopping && st.stop.load(std::memory_order_acquire)) [[unlikely]] {
      stopping = true;
      deadline = TscClock::ticks() + clock.from_ns(opt.drain_deadline_ns);
    }

    // 1. sources -> pipeline -> valves
    if (producing) {
      bool active = false;
      for (SourceEntry* se : w.sources) {
        // relaxed: only this thread stores the state of its sources
        if (se->state.load(std::memory_order_relaxed) != AdapterState::Running) continue;
        if (stopping) {
          se->source->stop();
          se->state.store(AdapterState::Stopped, std::memory_order_release);
          continue;
        }
        active = true;
        in.clear();
        const std::size_t n = se->source->poll(in);
        if (n != 0) {
          const std::uint64_t t0 = TscClock::ticks();
          for (Message& m : in) m.source_id = se->id;
          probe.record_burst(in, t0, [&]() noexcept {
            if (se->wants_outcomes) [[unlikely]] {
              down.observe(se->source.get());  // verdicts go back to the source before release()
              se->pipeline->process(in, emitter);
              emitter.flush();
              down.observe(nullptr);
            } else {
              se->pipeline->process(in, emitter);
              emitter.flush();  // the pipeline should have flushed; make sure nothing outlives `in`
            }
            se->source->release(in);
          });
          w.polled.add(n);
          work += n;
        }
        if (se->source->finished()) se->state.store(AdapterState::Finished, std::memory_order_release);
      }
      if (!active) producing = false;
    }

    // 2. conflation tables; a producer is done when it produces no more and its tables are empty
    const bool tables_empty = eng.pump(w.index);
    if (!producing && !done_producing) {
      if (tables_empty || (stopping && TscClock::ticks() >= deadline)) {
        done_producing = true;
        st.producers_done.fetch_add(1, std::memory_order_acq_rel);  // see State::producers_done
      }
    }

    // 3. lanes -> this worker's sink instances, then their own upkeep (event loops, heartbeats)
    const std::size_t drained = eng.drain(w.index, fan);
    for (SinkInstance* si : fan.mine)
      if (si->live) work += si->sink->service();
    if (fan.sent_mask != 0) {  // sinks sent to in this iteration (also while spinning in step 1)
      for (std::uint64_t b = fan.sent_mask; b != 0; b &= b - 1) fan.mine[std::countr_zero(b)]->sink->flush();
      fan.sent_mask = 0;
    }
    if (drained != 0) {
      w.drained.add(drained);
      work += drained;
    }
    if (down.take_pushed() != 0) {
      for (const auto& other : st.workers)
        if (other.get() != &w && other->sleeping.load(std::memory_order_relaxed)) wake(other->efd);
    }

    // 4. housekeeping on a TSC check
    const std::uint64_t now = TscClock::ticks();
    if (now >= next_hk) [[unlikely]] {
      next_hk = now + hk_ticks;
      for (SourceEntry* se : w.sources) {
        if (se->state.load(std::memory_order_relaxed) != AdapterState::Running) continue;
        if (!stopping) {
          se->pipeline->tick(emitter, now);
          emitter.flush();
        }
        if (too_many_errors(se->window, se->source->stats().errors, now, window_ticks, opt.error_limit))
          fail_source(*se, fmt::format("more than {} errors within {} ms", opt.error_limit,
                                       opt.error_window_ns / 1'000'000));
      }
      for (SinkInstance* si : fan.mine) {
        if (!si->live) continue;
        if (too_many_errors(si->window, si->sink->stats().errors, now, window_ticks, opt.error_limit))
          fail_sink(*si, fmt::format("more than {} errors within {} ms", opt.error_limit,
                                     opt.error_window_ns / 1'000'000));
      }
    }

    // Exit: every producer is done and this worker's lanes are empty, or the drain deadline passed.
    if (done_producing && st.producers_done.load(std::memory_order_acquire) == workers &&
        eng.consumer_idle(w.index))
      break;
    if (stopping && now >= deadline) {
      if (!eng.consumer_idle(w.index) || st.producers_done.load(std::memory_order_acquire) != workers)
        st.deadline_hit.store(true, std::memory_order_relaxed);
      break;
    }

    // 5. idle
    w.loops.add(1);
    worked_since_sleep |= work != 0;
    if (work != 0) {
      probe.flush();
      w.busy_loops.add(1);
      idle = 0;
      continue;
    }
    if (opt.idle == IdlePolicy::Busy) {
      cpu_relax();
      continue;
    }
    ++idle;
    if (idle <= opt.spin_loops) continue;
    if (idle <= opt.spin_loops + opt.pause_loops) {
      cpu_relax();
      continue;
    }
    // seq_cst: orders the flag before our re-check of the lanes (a producer that misses it costs one
    // bounded sleep, see Worker::sleeping).
    w.sleeping.store(true, std::memory_order_seq_cst);
    if (!st.stop.load(std::memory_order_acquire) && eng.consumer_idle(w.index)) {
      // The eventfd (stop, a producer) and every running adapter's wake descriptor (input became
      // ready: Source/Sink::wake_fd()), collected now: an adapter that failed or finished since the
      // last sleep is left out. Fixed room, no allocation; adapters beyond it are polled after the
      // bounded sleep as before.
      // A descriptor in an error state ends every sleep at once: one that reported it on the last
      // sleep, with no work done since, is left out of this one (which then lasts its full bound, or
      // until another descriptor is ready), so it costs one wake-up per sleep instead of a spinning
      // worker. The next sleep polls it again: a recovered adapter is not ignored for longer.
      const std::size_t skip_n = worked_since_sleep ? 0 : error_n;
      auto skipped = [&](int fd) noexcept {
        for (std::size_t i = 0; i < skip_n; ++i)
          if (error_fds[i] == fd) return true;
        return false;
      };
      std::array<pollfd, kMaxWakeFds> pfds;
      std::size_t n = 0;
      pfds[n++] = pollfd{w.efd, POLLIN, 0};
      auto add_fd = [&](int fd) noexcept {
        if (fd < 0) return;
        if (skipped(fd)) {
          w.wake_errors.add(1);
          return;
        }
        pfds[n++] = pollfd{fd, POLLIN, 0};
      };
      for (SourceEntry* se : w.sources) {
        if (n == pfds.size()) break;
        if (se->state.load(std::memory_order_relaxed) != AdapterState::Running) continue;
        add_fd(se->source->wake_fd());
      }
      for (SinkInstance* si : fan.mine) {
        if (n == pfds.size()) break;
        if (!si->live) continue;
        add_fd(si->sink->wake_fd());
      }
      error_n = 0;
      worked_since_sleep = false;
      const timespec ts{static_cast<time_t>(opt.sleep_ns / 1'000'000'000),
                        static_cast<long>(opt.sleep_ns % 1'000'000'000)};
      if (::ppoll(pfds.data(), static_cast<nfds_t>(n), &ts, nullptr) > 0) {
        if ((pfds[0].revents & POLLIN) != 0) {
          drain_eventfd(w.efd);
        }
        for (std::size_t i = 1; i < n; ++i) {
          if ((pfds[i].revents & POLLIN) != 0) w.wakeups.add(1);
          if ((pfds[i].revents & (POLLERR | POLLHUP | POLLNVAL)) != 0) error_fds[error_n++] = pfds[i].fd;
        }
      }
      w.sleeps.add(1);
    }
    w.sleeping.store(false, std::memory_order_relaxed);
  }

  probe.flush();
  // Shutdown of this worker's adapters: sources that are still open, then flush and stop its sinks.
  for (SourceEntry* se : w.sources) {
    const AdapterState s = se->state.load(std::memory_order_relaxed);
    if (s == AdapterState::Running || s == AdapterState::Finished) {
      se->source->stop();
      if (s == AdapterState::Running) se->state.store(AdapterState::Stopped, std::memory_order_release);
    }
  }
  for (SinkInstance* si : fan.mine) {
    if (!si->live) continue;
    si->sink->flush();
    si->sink->stop();
    si->live = false;
    si->state.store(AdapterState::Stopped, std::memory_order_release);
  }
  probe.flush();  // samples of the final flushes
}

}  // namespace

Runtime::Runtime(Options options) : state_(std::make_unique<State>()) { state_->opt = std::move(options); }

Runtime::~Runtime() {
  if (state_->started.load(std::memory_order_acquire) && !state_->finished.load(std::memory_order_acquire)) {
    request_stop();
    wait();
  }
  for (auto& w : state_->workers)
    if (w->efd >= 0) ::close(w->efd);
  if (state_->stats_efd >= 0) ::close(state_->stats_efd);
}

const Options& Runtime::options() const noexcept { return state_->opt; }

const route::PipelineBase* Runtime::pipeline(std::uint16_t source_id) const noexcept {
  // `sources` only grows before start(); after that it is read-only, so any thread may index it.
  if (source_id >= state_->sources.size()) return nullptr;
  return state_->sources[source_id]->pipeline.get();
}

Result<std::uint16_t> Runtime::add_source(std::string name, unsigned worker, std::unique_ptr<adapter::Source> source,
                                          std::unique_ptr<route::PipelineBase> pipeline) {
  State& st = *state_;
  if (st.started.load(std::memory_order_relaxed))
    return Error{Status::InvalidArgument, "add_source after start()"};
  if (!source || !pipeline) return Error{Status::InvalidArgument, "source '" + name + "': null source or pipeline"};
  if (worker >= st.opt.workers)
    return Error{Status::InvalidArgument, fmt::format("source '{}': worker {} does not exist (workers = {})", name,
                                                      worker, st.opt.workers)};
  if (st.sources.size() >= 0xFFFF) return Error{Status::InvalidArgument, "too many sources"};
  auto e = std::make_unique<SourceEntry>();
  e->name = std::move(name);
  e->type = std::string(source->type());
  e->pipeline_name = std::string(pipeline->name());
  e->worker = worker;
  e->id = static_cast<std::uint16_t>(st.sources.size());
  e->wants_outcomes = source->wants_outcomes();
  e->source = std::move(source);
  e->pipeline = std::move(pipeline);
  st.sources.push_back(std::move(e));
  return st.sources.back()->id;
}

Result<std::uint16_t> Runtime::add_sink(std::string name, std::vector<std::unique_ptr<adapter::Sink>> instances) {
  State& st = *state_;
  if (st.started.load(std::memory_order_relaxed)) return Error{Status::InvalidArgument, "add_sink after start()"};
  if (instances.size() != st.opt.workers)
    return Error{Status::InvalidArgument, fmt::format("sink '{}': {} instances for {} workers (one per worker)", name,
                                                      instances.size(), st.opt.workers)};
  if (st.sinks.size() >= valve::ValveEngine<>::kMaxSinks)
    return Error{Status::InvalidArgument, "at most 64 sinks (Route::sinks is a 64-bit mask)"};
  auto e = std::make_unique<SinkEntry>();
  e->name = std::move(name);
  for (auto& s : instances) {
    if (!s) return Error{Status::InvalidArgument, "sink '" + e->name + "': null instance"};
    if (e->type.empty()) e->type = std::string(s->type());
    auto si = std::make_unique<SinkInstance>();
    si->sink = std::move(s);
    si->sink_id = static_cast<std::uint16_t>(st.sinks.size());
    si->health = st.opt.health;
    e->instances.push_back(std::move(si));
  }
  st.sinks.push_back(std::move(e));
  return static_cast<std::uint16_t>(st.sinks.size() - 1);
}

Result<void> Runtime::start() {
  State& st = *state_;
  if (st.started.load(std::memory_order_relaxed)) return Error{Status::InvalidArgument, "start() called twice"};
  if (auto ok = validate(st.opt); !ok) return ok.error();
  valve::Options vo = st.opt.valves;
  vo.producers = vo.consumers = st.opt.workers;
  vo.sinks = static_cast<std::uint32_t>(st.sinks.size());  // kAllSinks reaches exactly the added sinks
  Result<void> made = Error{Status::InvalidArgument, "slot size"};
  switch (st.opt.slot_bytes) {
    case 128: made = make_engine<128>(st.engine, vo); break;
    case 256: made = make_engine<256>(st.engine, vo); break;
    case 512: made = make_engine<512>(st.engine, vo); break;
    case 1024: made = make_engine<1024>(st.engine, vo); break;
    case 2048: made = make_engine<2048>(st.engine, vo); break;
    default: break;
  }
  if (!made) return made.error();

  for (unsigned i = 0; i < st.opt.workers; ++i) {
    auto w = std::make_unique<Worker>();
    w->index = i;
    w->core = st.opt.cores.empty() ? -1 : st.opt.cores[i % st.opt.cores.size()];
    w->efd = make_eventfd();
    if (w->efd < 0) return Error{Status::IoError, std::string("eventfd: ") + std::strerror(errno)};
    std::array<metrics::IntervalRecorder*, kStages> recs{};
    const metrics::HdrHistogram prototype = make_stage_histogram();
    for (std::size_t s = 0; s < kStages; ++s) {
      w->stage_rec[s] = std::make_unique<metrics::IntervalRecorder>(prototype);
      recs[s] = w->stage_rec[s].get();
      w->stage_total.push_back(prototype);
    }
    w->probe = std::make_unique<metrics::StageProbe>(recs, st.opt.trace_every);
    st.workers.push_back(std::move(w));
  }
  if (st.opt.on_interval) st.pending.assign(kStages, make_stage_histogram());
  st.interval_start_epoch_ns = realtime_ns();
  for (auto& se : st.sources) {
    st.workers[se->worker]->sources.push_back(se.get());
    se->pipeline->attach_probe(st.workers[se->worker]->probe.get());  // before the worker thread starts
  }
  st.stats_efd = make_eventfd();
  if (st.stats_efd < 0) return Error{Status::IoError, std::string("eventfd: ") + std::strerror(errno)};
  st.wake_ready.store(true, std::memory_order_release);  // pairs with the acquire in request_stop()
  st.start_ns = TscClock::monotonic_ns();
  st.started.store(true, std::memory_order_release);

  try {
    for (auto& wp : st.workers) {
      Worker* w = wp.get();
      w->thread = std::thread([&st, w] {
        std::visit(
            [&](auto& e) {
              if constexpr (!std::is_same_v<std::decay_t<decltype(e)>, std::monostate>) run_worker(st, *w, *e);
            },
            st.engine);
      });
    }
    st.stats_thread = std::thread([&st] {
      const std::string name = st.opt.thread_name + "-stats";
      pthread_setname_np(pthread_self(), name.c_str());
      // Intervals for on_interval are cut on CLOCK_MONOTONIC, independent of the collect cadence.
      const std::uint64_t interval_ns = std::max<std::uint64_t>(st.opt.interval_ns, 1'000'000);
      std::uint64_t next_interval = TscClock::monotonic_ns() + interval_ns;
      const std::uint64_t nap_ns =
          st.opt.on_interval ? std::min(st.opt.stats_interval_ns, interval_ns) : st.opt.stats_interval_ns;
      const timespec ts{static_cast<time_t>(nap_ns / 1'000'000'000), static_cast<long>(nap_ns % 1'000'000'000)};
      // acquire: pairs with the release store in wait(); the eventfd only cuts the sleep short.
      while (!st.stats_stop.load(std::memory_order_acquire)) {
        pollfd pfd{st.stats_efd, POLLIN, 0};
        if (::ppoll(&pfd, 1, &ts, nullptr) > 0 && (pfd.revents & POLLIN)) {
          drain_eventfd(st.stats_efd);
        }
        const std::uint64_t now = TscClock::monotonic_ns();
        if (st.opt.on_interval && now >= next_interval) {
          st.emit_interval();
          next_interval += interval_ns * ((now - next_interval) / interval_ns + 1);  // skip missed ones
        } else {
          st.collect();
        }
      }
    });
  } catch (const std::system_error& e) {
    request_stop();
    for (auto& w : st.workers)
      if (w->thread.joinable()) w->thread.join();
    st.finished.store(true, std::memory_order_release);
    return Error{Status::IoError, std::string("cannot start threads: ") + e.what()};
  }
  return {};
}

void Runtime::request_stop() noexcept {
  State& st = *state_;
  st.stop.store(true, std::memory_order_release);  // pairs with the workers' acquire load
  if (!st.wake_ready.load(std::memory_order_acquire)) return;
  for (const auto& w : st.workers) wake(w->efd);
}

void Runtime::wait() {
  State& st = *state_;
  if (!st.started.load(std::memory_order_acquire) || st.finished.load(std::memory_order_acquire)) return;
  for (auto& w : st.workers)
    if (w->thread.joinable()) w->thread.join();
  st.stats_stop.store(true, std::memory_order_release);  // pairs with the stats thread's acquire load
  wake(st.stats_efd);
  if (st.stats_thread.joinable()) st.stats_thread.join();
  st.collect();
  st.emit_interval();  // the last, partial interval
  st.end_ns.store(TscClock::monotonic_ns(), std::memory_order_relaxed);
  st.finished.store(true, std::memory_order_release);
}

bool Runtime::finished() const noexcept { return state_->finished.load(std::memory_order_acquire); }

bool Runtime::lane_disconnected(unsigned lane) const noexcept {
  return state_->with_engine([&](auto* e) { return e != nullptr && e->disconnected(lane); });
}

void Runtime::reconnect_lane(unsigned lane) noexcept {
  state_->with_engine([&](auto* e) {
    if (e != nullptr) e->reconnect(lane);
    return 0;
  });
}

namespace {
StageReport stage_report(std::string_view name, const metrics::HdrHistogram& h) {
  StageReport r;
  r.name = name;
  r.count = h.total_count();
  if (r.count == 0) return r;
  r.min_ns = h.min();
  r.p50_ns = h.value_at_percentile(50.0);
  r.p90_ns = h.value_at_percentile(90.0);
  r.p99_ns = h.value_at_percentile(99.0);
  r.p999_ns = h.value_at_percentile(99.9);
  r.p9999_ns = h.value_at_percentile(99.99);
  r.max_ns = h.max();
  r.mean_ns = h.mean();
  // One pass over the non-empty buckets; a bucket counts towards every bound >= its lowest value.
  std::size_t b = 0;
  std::uint64_t below = 0;  // samples in buckets that start at or below the current bound
  for (const metrics::RecordedBucket& bucket : h.recorded()) {
    while (b < r.le_counts.size() && bucket.lowest_value > metrics::kPrometheusBucketsNs[b]) r.le_counts[b++] = below;
    below = bucket.cumulative_count;
  }
  while (b < r.le_counts.size()) r.le_counts[b++] = below;
  return r;
}

LatencySummary summarize(const metrics::HdrHistogram& h) {
  LatencySummary s;
  s.count = h.total_count();
  if (s.count == 0) return s;
  s.p50_ns = h.value_at_percentile(50.0);
  s.p99_ns = h.value_at_percentile(99.0);
  s.p999_ns = h.value_at_percentile(99.9);
  s.max_ns = h.max();
  return s;
}
}  // namespace

Report Runtime::report() const {
  const State& st = *state_;
  Report r;
  r.started = st.started.load(std::memory_order_acquire);
  r.finished = st.finished.load(std::memory_order_acquire);
  r.stop_requested = st.stop.load(std::memory_order_relaxed);
  r.deadline_hit = st.deadline_hit.load(std::memory_order_relaxed);
  if (r.started) {
    const std::uint64_t end = r.finished ? st.end_ns.load(std::memory_order_relaxed) : TscClock::monotonic_ns();
    r.elapsed_ns = end > st.start_ns ? end - st.start_ns : 0;
    st.collect();
  }
  {
    const std::lock_guard<std::mutex> lock(st.stats_mutex);
    for (const auto& w : st.workers) {
      WorkerReport wr;
      wr.worker = w->index;
      wr.core = w->core;
      wr.loops = w->loops.get();
      wr.busy_loops = w->busy_loops.get();
      wr.sleeps = w->sleeps.get();
      wr.wakeups = w->wakeups.get();
      wr.wake_errors = w->wake_errors.get();
      wr.polled = w->polled.get();
      wr.pushed = w->pushed.get();
      wr.collisions = w->collisions.get();
      wr.rejected = w->rejected.get();
      wr.route_drops = w->route_drops.get();
      wr.drained = w->drained.get();
      wr.poll_to_pipeline = summarize(w->stage_total[static_cast<std::size_t>(Stage::Process)]);
      wr.push_to_drain = summarize(w->stage_total[static_cast<std::size_t>(Stage::Valve)]);
      r.unknown_sink_messages += w->unknown_sink.get();
      r.workers.push_back(std::move(wr));
    }
    for (std::size_t s = 0; s < kStages; ++s) {
      st.merge_buf.reset();
      for (const auto& w : st.workers) (void)st.merge_buf.merge(w->stage_total[s]);
      r.stages.push_back(stage_report(metrics::kStageNames[s], st.merge_buf));
    }
  }
  for (const auto& se : st.sources) {
    SourceReport sr;
    sr.name = se->name;
    sr.type = se->type;
    sr.pipeline = se->pipeline_name;
    sr.worker = se->worker;
    sr.state = se->state.load(std::memory_order_acquire);  // pairs with the owner's release store
    if (sr.state == AdapterState::Failed) sr.error = se->error;
    sr.stats = se->source->stats();
    sr.pipeline_counters = se->pipeline->counters();
    r.sources.push_back(std::move(sr));
  }
  for (const auto& s : st.sinks) {
    SinkReport kr;
    kr.name = s->name;
    kr.type = s->type;
    for (std::size_t i = 0; i < s->instances.size(); ++i) {
      const SinkInstance& si = *s->instances[i];
      SinkInstanceReport ir;
      ir.worker = static_cast<unsigned>(i);
      ir.state = si.state.load(std::memory_order_acquire);  // pairs with the owner's release store
      if (ir.state == AdapterState::Failed) ir.error = si.error;
      ir.stats = si.sink->stats();
      kr.stats.messages += ir.stats.messages;
      kr.stats.bytes += ir.stats.bytes;
      kr.stats.drops += ir.stats.drops;
      kr.stats.errors += ir.stats.errors;
      for (const adapter::AdapterCounters::Entry& e : ir.stats.details) kr.stats.details.accumulate(e.name_view(), e.value);
      kr.undeliverable += si.undeliverable.get();
      kr.instances.push_back(std::move(ir));
    }
    r.sinks.push_back(std::move(kr));
  }
  st.with_engine([&](auto* e) {
    if (e == nullptr) return 0;
    for (unsigned l = 0; l < e->lanes(); ++l) {
      LaneReport lr;
      lr.lane = l;
      lr.consumer = e->consumer_of(l);
      lr.counters = e->counters(l);
      r.lanes.push_back(lr);
    }
    r.valve_totals = e->totals();
    return 0;
  });
  return r;
}

std::string format_stage_table(std::span<const StageReport> stages) {
  std::string out = fmt::format("{:<9} {:>12} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9} {:>11}   (ns)", "stage", "count",
                                "min", "p50", "p90", "p99", "p99.9", "p99.99", "max");
  for (const StageReport& s : stages) {
    if (s.count == 0) continue;
    out += fmt::format("\n{:<9} {:>12} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9} {:>11}", s.name, s.count, s.min_ns,
                       s.p50_ns, s.p90_ns, s.p99_ns, s.p999_ns, s.p9999_ns, s.max_ns);
  }
  return out;
}

std::string Report::to_text() const {
  std::string out;
  auto line = [&out](const std::string& s) {
    out += s;
    out += '\n';
  };
  line(fmt::format("runtime: {:.3f} s, stop requested: {}, drained: {}{}", static_cast<double>(elapsed_ns) / 1e9,
                   stop_requested ? "yes" : "no", drained() ? "yes" : "no",
                   deadline_hit ? " (drain deadline hit)" : ""));
  line(fmt::format("valves: in {} out {} dropped {} (oversize {}, disconnected {}) conflated {} in_flight {} "
                   "collisions {} max_depth {}",
                   valve_totals.in, valve_totals.out, valve_totals.dropped, valve_totals.oversize,
                   valve_totals.disconnected_drops, valve_totals.conflated, valve_totals.in_flight,
                   valve_totals.collisions, valve_totals.max_depth));
  line("worker  core      polled      pushed     drained  collisions  sleeps  poll->pipe p50/p99 ns  push->drain "
       "p50/p99 ns");
  for (const WorkerReport& w : workers)
    line(fmt::format("{:>6}  {:>4}  {:>10}  {:>10}  {:>10}  {:>10}  {:>6}  {:>10}/{:<10}  {:>10}/{:<10}", w.worker,
                     w.core, w.polled, w.pushed, w.drained, w.collisions, w.sleeps, w.poll_to_pipeline.p50_ns,
                     w.poll_to_pipeline.p99_ns, w.push_to_drain.p50_ns, w.push_to_drain.p99_ns));
  line(format_stage_table(stages));
  for (const SourceReport& s : sources)
    line(fmt::format("source {} ({}, pipeline {}, worker {}): {}{}{} messages {} errors {} | pipeline in {} emitted "
                     "{} rejected {} dropped {} gaps {} missing {}",
                     s.name, s.type, s.pipeline, s.worker, to_string(s.state), s.error.empty() ? "" : ": ", s.error,
                     s.stats.messages, s.stats.errors, s.pipeline_counters.in, s.pipeline_counters.emitted,
                     s.pipeline_counters.rejected, s.pipeline_counters.dropped, s.pipeline_counters.gaps,
                     s.pipeline_counters.missing));
  for (const SinkReport& s : sinks) {
    line(fmt::format("sink {} ({}): messages {} bytes {} drops {} errors {} undeliverable {}", s.name, s.type,
                     s.stats.messages, s.stats.bytes, s.stats.drops, s.stats.errors, s.undeliverable));
    for (const SinkInstanceReport& i : s.instances)
      if (i.state == AdapterState::Failed)
        line(fmt::format("  instance on worker {}: failed: {}", i.worker, i.error));
  }
  for (const LaneReport& l : lanes) {
    const valve::LaneCounters& c = l.counters;
    if (c.in == 0 && !c.disconnected) continue;
    line(fmt::format("lane {:>3} (worker {}, {}): in {} out {} dropped {} conflated {} in_flight {} max_depth {}{}",
                     l.lane, l.consumer, valve::to_string(c.policy), c.in, c.out, c.dropped, c.conflated, c.in_flight,
                     c.max_depth, c.disconnected ? " DISCONNECTED" : ""));
  }
  if (unknown_sink_messages != 0) line(fmt::format("messages routed to unknown sinks: {}", unknown_sink_messages));
  return out;
}

namespace {
std::atomic<Runtime*> g_signal_runtime{nullptr};
void hg_on_stop_signal(int) {
  // acquire: pairs with the release store in StopSignals; request_stop() is async-signal-safe.
  if (Runtime* r = g_signal_runtime.load(std::memory_order_acquire)) r->request_stop();
}
}  // namespace

StopSignals::StopSignals(Runtime& runtime) {
  g_signal_runtime.store(&runtime, std::memory_order_release);
  struct sigaction sa {};
  sa.sa_handler = hg_on_stop_signal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;
  ::sigaction(SIGINT, &sa, &old_int_);
  ::sigaction(SIGTERM, &sa, &old_term_);
}

StopSignals::~StopSignals() {
  ::sigaction(SIGINT, &old_int_, nullptr);
  ::sigaction(SIGTERM, &old_term_, nullptr);
  g_signal_runtime.store(nullptr, std::memory_order_release);
}

}  // namespace hypergate::runtime
