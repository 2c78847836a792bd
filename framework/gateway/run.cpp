// The gateway's run loop (see run.hpp): wiring a plan into the runtime, signals, stats, final report.
#include "run.hpp"

#include <fmt/format.h>

#include <atomic>
#include <csignal>
#include <ctime>
#include <memory>
#include <string>
#include <thread>

#include "http/admin_server.hpp"
#include "hypergate/core/clock.hpp"
#include "hypergate/metrics/histogram_log.hpp"
#include "hypergate/metrics/stage_probe.hpp"
#include "hypergate/runtime/runtime.hpp"

namespace hypergate::gateway {

namespace {

// The signal handler's view of the running gateway. Written before the handlers are installed and
// cleared after they are removed; the handler only calls request_stop(), which is async-signal-safe.
std::atomic<runtime::Runtime*> g_runtime{nullptr};
volatile std::sig_atomic_t g_signal = 0;

extern "C" void on_stop_signal(int sig) {
  g_signal = sig;
  // acquire: pairs with the release store of g_runtime in SignalGuard's constructor.
  if (runtime::Runtime* rt = g_runtime.load(std::memory_order_acquire)) rt->request_stop();
}

struct SignalGuard {
  struct sigaction old_int {};
  struct sigaction old_term {};
  explicit SignalGuard(runtime::Runtime& rt) {
    g_signal = 0;
    g_runtime.store(&rt, std::memory_order_release);  // release: pairs with the handler's acquire load
    struct sigaction sa {};
    sa.sa_handler = on_stop_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    sigaction(SIGINT, &sa, &old_int);
    sigaction(SIGTERM, &sa, &old_term);
  }
  ~SignalGuard() {
    sigaction(SIGINT, &old_int, nullptr);
    sigaction(SIGTERM, &old_term, nullptr);
    g_runtime.store(nullptr, std::memory_order_release);
  }
  SignalGuard(const SignalGuard&) = delete;
  SignalGuard& operator=(const SignalGuard&) = delete;
};

runtime::Options runtime_options(const GatewayPlan& plan) {
  runtime::Options o;
  o.workers = plan.gateway.workers;
  for (unsigned c : plan.gateway.cores) o.cores.push_back(static_cast<int>(c));
  o.idle = plan.gateway.idle == GatewaySettings::Idle::Busy ? runtime::IdlePolicy::Busy : runtime::IdlePolicy::Backoff;
  o.sleep_ns = plan.gateway.idle_sleep_ns;
  o.valves.lanes = plan.valves.lanes;
  o.valves.ring_capacity = plan.valves.capacity;
  o.valves.spin_ns = plan.valves.spin_ns;
  o.slot_bytes = plan.valves.slot_bytes;
  switch (plan.valves.policy) {
    case ValveSettings::Policy::Drop: o.valves.policy = valve::CollisionPolicy::Drop; break;
    case ValveSettings::Policy::Spin: o.valves.policy = valve::CollisionPolicy::Spin; break;
    case ValveSettings::Policy::Conflate: o.valves.policy = valve::CollisionPolicy::Conflate; break;
    case ValveSettings::Policy::Disconnect: o.valves.policy = valve::CollisionPolicy::Disconnect; break;
  }
  o.health = plan.health.get();
  return o;
}

std::string stats_line(const runtime::Report& now, const runtime::Report& before, double seconds) {
  auto rate = [seconds](std::uint64_t a, std::uint64_t b) { return seconds > 0 ? static_cast<double>(a - b) / seconds : 0.0; };
  std::string line = "in:";
  for (std::size_t i = 0; i < now.sources.size(); ++i) {
    const auto m = now.sources[i].stats.messages;
    const auto was = i < before.sources.size() ? before.sources[i].stats.messages : 0;
    line += fmt::format(" {}={} ({:.0f}/s)", now.sources[i].name, m, rate(m, was));
  }
  line += " out:";
  for (std::size_t i = 0; i < now.sinks.size(); ++i) {
    const auto m = now.sinks[i].stats.messages;
    const auto was = i < before.sinks.size() ? before.sinks[i].stats.messages : 0;
    line += fmt::format(" {}={} ({:.0f}/s)", now.sinks[i].name, m, rate(m, was));
  }
  const auto& v = now.valve_totals;
  line += fmt::format(" valves: in_flight={} dropped={} conflated={}", v.in_flight, v.dropped, v.conflated);
  return line;
}

// Writes the runtime's stage intervals to an HdrHistogram interval log: one line per stage that has
// samples in the interval, tagged with the stage name. Called on the stats thread; the first write
// error is kept and reported at exit (the run goes on: a full disk must not stop a gateway).
class StageLogWriter {
 public:
  explicit StageLogWriter(metrics::HistogramLogWriter writer) : writer_(std::move(writer)) {}
  void write(const runtime::StageInterval& iv) {
    if (!error_.empty()) return;
    for (std::size_t s = 0; s < iv.stages.size() && s < metrics::kStageCount; ++s) {
      if (iv.stages[s].total_count() == 0) continue;
      auto r = writer_.write(metrics::kStageNames[s], static_cast<double>(iv.start_epoch_ns) / 1e9,
                             static_cast<double>(iv.end_epoch_ns) / 1e9, iv.stages[s]);
      if (!r) {
        error_ = r.error().message;
        return;
      }
      ++lines_;
    }
  }
  [[nodiscard]] std::string finish() {
    if (auto r = writer_.close(); !r && error_.empty()) error_ = r.error().message;
    return error_;
  }
  [[nodiscard]] std::uint64_t lines() const noexcept { return lines_; }
  [[nodiscard]] const std::string& path() const noexcept { return writer_.path(); }

 private:
  metrics::HistogramLogWriter writer_;
  std::string error_;
  std::uint64_t lines_ = 0;
};

double epoch_seconds_now() {
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
}

}  // namespace

int run_gateway(GatewayPlan& plan, const RunOptions& options) {
  runtime::Options ro = runtime_options(plan);
  ro.trace_every = options.histograms.trace_every;
  std::unique_ptr<StageLogWriter> hlog;
  if (!options.histograms.hlog.empty()) {
    auto w = metrics::HistogramLogWriter::open(options.histograms.hlog, epoch_seconds_now(),
                                               fmt::format("hypergate {}: per-stage latency in ns, a tag per stage",
                                                           options.command));
    if (!w) {
      fmt::print(stderr, "hypergate {}: --hlog: {}\n", options.command, w.error().message);
      return 1;
    }
    hlog = std::make_unique<StageLogWriter>(std::move(w.value()));
    ro.interval_ns = options.histograms.hlog_interval_ns;
    ro.on_interval = [h = hlog.get()](const runtime::StageInterval& iv) { h->write(iv); };
  }
  runtime::Runtime rt(std::move(ro));
  for (auto& k : plan.sinks) {
    if (auto r = rt.add_sink(k.name, std::move(k.instances)); !r) {
      fmt::print(stderr, "hypergate {}: sink '{}': {}\n", options.command, k.name, r.error().message);
      return 1;
    }
  }
  for (auto& s : plan.sources) {
    if (auto r = rt.add_source(s.name, s.worker, std::move(s.source), std::move(s.pipeline_instance)); !r) {
      fmt::print(stderr, "hypergate {}: source '{}': {}\n", options.command, s.name, r.error().message);
      return 1;
    }
  }

  SignalGuard signals(rt);
  if (auto r = rt.start(); !r) {
    fmt::print(stderr, "hypergate {}: cannot start the runtime: {}\n", options.command, r.error().message);
    return 1;
  }
  // Adapters start on their workers' threads: "running" is printed once every one has started (or
  // failed, which the report shows), so whoever waits for the line can use the gateway's sockets.
  for (int i = 0; i < 5000 && !rt.finished(); ++i) {
    const runtime::Report r = rt.report();
    bool pending = false;
    for (const auto& s : r.sources) pending = pending || s.state == runtime::AdapterState::Created;
    for (const auto& k : r.sinks)
      for (const auto& inst : k.instances) pending = pending || inst.state == runtime::AdapterState::Created;
    if (!pending) break;
    timespec nap{0, 1'000'000};
    nanosleep(&nap, nullptr);
  }
  fmt::print("hypergate: running {} source(s), {} sink(s) on {} worker(s); Ctrl-C to stop\n", plan.sources.size(),
             plan.sinks.size(), plan.gateway.workers);
  std::fflush(stdout);

  // The admin listener reads rt.report() (mutex-guarded, any thread) on its own thread; it lives
  // while the runtime runs and is stopped after the workers have ended (its destructor, at the latest).
  std::unique_ptr<http::AdminServer> admin;
  if (plan.admin.enabled) {
    http::AdminOptions ao;
    ao.host = plan.admin.listen.host;
    ao.port = plan.admin.listen.port;
    admin = std::make_unique<http::AdminServer>(std::move(ao), [&rt] { return rt.report(); });
    if (auto r = admin->start(); !r) {
      fmt::print(stderr, "hypergate {}: {}\n", options.command, r.error().message);
      rt.request_stop();
      rt.wait();
      return 1;
    }
    const std::string& host = plan.admin.listen.host;
    fmt::print("hypergate: admin on http://{}:{}\n", host.find(':') != std::string::npos ? "[" + host + "]" : host,
               admin->port());
    std::fflush(stdout);
  }

  // wait() joins the workers; it runs on its own thread so this one can print a line per interval.
  std::atomic<bool> done{false};
  std::thread waiter([&] {
    rt.wait();
    done.store(true, std::memory_order_release);  // release: pairs with the acquire loads below
  });
  const std::uint64_t begin = TscClock::monotonic_ns();
  std::uint64_t last = begin;
  runtime::Report before = rt.report();
  while (!done.load(std::memory_order_acquire)) {
    timespec nap{0, 50'000'000};
    nanosleep(&nap, nullptr);
    const std::uint64_t now = TscClock::monotonic_ns();
    if (!options.quiet && now - last >= options.stats_interval_ns && !done.load(std::memory_order_acquire)) {
      runtime::Report r = rt.report();
      fmt::print("[{:.1f}s] {}\n", static_cast<double>(now - begin) / 1e9,
                 stats_line(r, before, static_cast<double>(now - last) / 1e9));
      std::fflush(stdout);
      before = std::move(r);
      last = now;
    }
  }
  waiter.join();
  if (admin) admin->stop();

  const runtime::Report report = rt.report();
  const int sig = g_signal;
  fmt::print("hypergate: stopped ({}) after {:.3f}s\n",
             sig == SIGINT ? "SIGINT" : sig == SIGTERM ? "SIGTERM" : "all sources finished",
             static_cast<double>(report.elapsed_ns) / 1e9);
  std::uint64_t total_in = 0, total_in_bytes = 0, total_out = 0;
  bool failed = false;
  for (const auto& s : report.sources) {
    fmt::print("  source {} ({}): {} messages, {} bytes, {} rejects, {} drops, {} errors{}\n", s.name, s.type,
               s.stats.messages, s.stats.bytes, s.stats.rejects, s.stats.drops, s.stats.errors,
               s.state == runtime::AdapterState::Failed ? " — FAILED: " + s.error : "");
    total_in += s.stats.messages;
    total_in_bytes += s.stats.bytes;
    failed = failed || s.state == runtime::AdapterState::Failed;
  }
  for (const auto& k : report.sinks) {
    fmt::print("  sink {} ({}): {} messages, {} bytes, {} drops, {} errors, {} undeliverable\n", k.name, k.type,
               k.stats.messages, k.stats.bytes, k.stats.drops, k.stats.errors, k.undeliverable);
    total_out += k.stats.messages;
    for (const auto& i : k.instances) failed = failed || i.state == runtime::AdapterState::Failed;
  }
  fmt::print("totals: {} messages in ({} bytes), {} messages out\n", total_in, total_in_bytes, total_out);
  fmt::print("\n{}", report.to_text());
  if (hlog) {
    const std::string err = hlog->finish();
    if (!err.empty()) {
      fmt::print(stderr, "hypergate {}: --hlog {}: {}\n", options.command, hlog->path(), err);
      failed = true;
    } else {
      fmt::print("histogram log: {} ({} interval lines; read it with `hypergate hist {}`)\n", hlog->path(),
                 hlog->lines(), hlog->path());
    }
  }
  std::fflush(stdout);
  if (options.after_run) {
    if (const int code = options.after_run(rt); code != 0) return code;
  }
  return failed ? 1 : 0;
}

}  // namespace hypergate::gateway
