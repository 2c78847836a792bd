// The single-threaded run loop (see run.hpp).
//
// Housekeeping (the stats line, the stop check) runs on a TSC deadline checked once per round, not
// per message. An empty round either spins (idle = "busy") or backs off: a few PAUSEs, then short
// sleeps that grow to 100 us, so an idle gateway does not burn a core.
#include "run.hpp"

#include <fmt/format.h>

#include <csignal>
#include <ctime>

#include "hypergate/core/burst.hpp"
#include "hypergate/core/cache.hpp"
#include "hypergate/core/clock.hpp"

namespace hypergate::gateway {

namespace {

volatile std::sig_atomic_t g_stop_signal = 0;  // set by the handler, read by the loop

extern "C" void on_stop_signal(int sig) { g_stop_signal = sig; }

struct SignalGuard {
  struct sigaction old_int {};
  struct sigaction old_term {};
  SignalGuard() {
    g_stop_signal = 0;
    struct sigaction sa {};
    sa.sa_handler = on_stop_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0;  // no SA_RESTART: a blocking call in an adapter returns EINTR and sees the flag
    sigaction(SIGINT, &sa, &old_int);
    sigaction(SIGTERM, &sa, &old_term);
  }
  ~SignalGuard() {
    sigaction(SIGINT, &old_int, nullptr);
    sigaction(SIGTERM, &old_term, nullptr);
  }
  SignalGuard(const SignalGuard&) = delete;
  SignalGuard& operator=(const SignalGuard&) = delete;
};

void idle_wait(unsigned& empty_rounds) {
  ++empty_rounds;
  if (empty_rounds < 64) {
    cpu_relax();
    return;
  }
  const long ns = std::min<long>(100'000, 1'000L << std::min(empty_rounds - 64, 7u));
  timespec nap{0, ns};
  nanosleep(&nap, nullptr);
}

std::string counts_line(const GatewayPlan& plan, const std::vector<std::uint64_t>& last_in,
                        const std::vector<std::uint64_t>& last_out, double seconds) {
  std::string line = "in:";
  for (std::size_t i = 0; i < plan.sources.size(); ++i) {
    const auto m = plan.sources[i].source->stats().messages;
    line += fmt::format(" {}={} ({:.0f}/s)", plan.sources[i].name, m,
                        seconds > 0 ? static_cast<double>(m - last_in[i]) / seconds : 0.0);
  }
  line += " out:";
  for (std::size_t i = 0; i < plan.sinks.size(); ++i) {
    const auto m = plan.sinks[i].sink->stats().messages;
    line += fmt::format(" {}={} ({:.0f}/s)", plan.sinks[i].name, m,
                        seconds > 0 ? static_cast<double>(m - last_out[i]) / seconds : 0.0);
  }
  return line;
}

}  // namespace

int run_gateway(GatewayPlan& plan, const RunOptions& options) {
  SignalGuard signals;

  // Start sinks first, so the first burst has somewhere to go; stop in reverse on failure.
  std::size_t sinks_started = 0, sources_started = 0;
  auto stop_started = [&] {
    for (std::size_t i = sources_started; i-- > 0;) plan.sources[i].source->stop();
    for (std::size_t i = sinks_started; i-- > 0;) plan.sinks[i].sink->stop();
  };
  for (auto& k : plan.sinks) {
    if (auto r = k.sink->start(); !r) {
      fmt::print(stderr, "hypergate run: sink '{}' ({}) failed to start: {}\n", k.name, k.type, r.error().message);
      stop_started();
      return 1;
    }
    ++sinks_started;
  }
  for (auto& s : plan.sources) {
    if (auto r = s.source->start(); !r) {
      fmt::print(stderr, "hypergate run: source '{}' ({}) failed to start: {}\n", s.name, s.type,
                 r.error().message);
      stop_started();
      return 1;
    }
    ++sources_started;
  }

  const TscClock& clock = TscClock::instance();
  const std::uint64_t begin = TscClock::ticks();
  const std::uint64_t stats_ticks = clock.from_ns(options.stats_interval_ns);
  std::uint64_t next_stats = begin + stats_ticks;
  std::uint64_t last_stats = begin;
  std::vector<std::uint64_t> last_in(plan.sources.size(), 0), last_out(plan.sinks.size(), 0);
  std::vector<std::uint64_t> refused(plan.sinks.size(), 0);  // messages a sink did not accept
  const bool busy = plan.gateway.idle == GatewaySettings::Idle::Busy;

  fmt::print("hypergate: running {} source(s), {} sink(s), single-threaded loop; Ctrl-C to stop\n",
             plan.sources.size(), plan.sinks.size());
  std::fflush(stdout);

  Burst<> burst;
  unsigned empty_rounds = 0;
  while (g_stop_signal == 0) {
    std::size_t moved = 0;
    bool all_finished = true;
    for (auto& s : plan.sources) {
      burst.clear();
      const std::size_t got = s.source->poll(burst);  // Burst<> holds kDefaultBurst; [gateway] burst is
                                                      // honoured by the multi-core runtime
      if (got != 0) {
        for (std::size_t k = 0; k < plan.sinks.size(); ++k) {
          const std::size_t accepted = plan.sinks[k].sink->send(burst);
          refused[k] += burst.size() - accepted;  // this loop has no valves: what a sink refuses is dropped
        }
        s.source->release(burst);
        moved += got;
      }
      all_finished = all_finished && s.source->finished();
    }
    if (moved != 0) {
      for (auto& k : plan.sinks) k.sink->flush();
      empty_rounds = 0;
    } else if (all_finished) {
      break;
    } else if (busy) {
      cpu_relax();
    } else {
      idle_wait(empty_rounds);
    }
    const std::uint64_t now = TscClock::ticks();
    if (now >= next_stats) [[unlikely]] {
      if (!options.quiet) {
        const double secs = static_cast<double>(clock.elapsed_ns(last_stats, now)) / 1e9;
        fmt::print("[{:.1f}s] {}\n", static_cast<double>(clock.elapsed_ns(begin, now)) / 1e9,
                   counts_line(plan, last_in, last_out, secs));
        std::fflush(stdout);
      }
      for (std::size_t i = 0; i < plan.sources.size(); ++i) last_in[i] = plan.sources[i].source->stats().messages;
      for (std::size_t i = 0; i < plan.sinks.size(); ++i) last_out[i] = plan.sinks[i].sink->stats().messages;
      last_stats = now;
      next_stats = now + stats_ticks;
    }
  }
  const int signal = g_stop_signal;

  for (auto& k : plan.sinks) k.sink->flush();
  stop_started();

  const double secs = static_cast<double>(clock.elapsed_ns(begin, TscClock::ticks())) / 1e9;
  std::uint64_t total_in = 0, total_in_bytes = 0, total_out = 0;
  for (const auto& s : plan.sources) {
    const auto st = s.source->stats();
    total_in += st.messages;
    total_in_bytes += st.bytes;
  }
  for (const auto& k : plan.sinks) total_out += k.sink->stats().messages;
  fmt::print("hypergate: stopped ({}) after {:.3f}s\n",
             signal == SIGINT ? "SIGINT" : signal == SIGTERM ? "SIGTERM" : "all sources finished", secs);
  for (const auto& s : plan.sources) {
    const auto st = s.source->stats();
    fmt::print("  source {} ({}): {} messages, {} bytes, {} rejects, {} drops, {} errors\n", s.name, s.type,
               st.messages, st.bytes, st.rejects, st.drops, st.errors);
  }
  for (std::size_t k = 0; k < plan.sinks.size(); ++k) {
    const auto st = plan.sinks[k].sink->stats();
    fmt::print("  sink {} ({}): {} messages, {} bytes, {} refused, {} drops, {} errors\n", plan.sinks[k].name,
               plan.sinks[k].type, st.messages, st.bytes, refused[k], st.drops, st.errors);
  }
  fmt::print("totals: {} messages in ({} bytes), {} messages out\n", total_in, total_in_bytes, total_out);
  std::fflush(stdout);
  return 0;
}

}  // namespace hypergate::gateway
