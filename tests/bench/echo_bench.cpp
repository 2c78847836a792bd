// echo: 64-byte ping-pong messages per second through the io_uring echo server (UringServer +
// EchoHandler, the `echo` adapter's engine) against the plain epoll echo baseline (EpollEchoServer),
// in the same run, at 1, 64 and 512 concurrent connections.
//
//   echo/uring/conns:N   UringServer + EchoHandler on a thread pinned to core 0
//   echo/epoll/conns:N   EpollEchoServer on a thread pinned to core 0
//
// Client: the benchmark thread (scripts/bench.sh pins it to the last core). N non-blocking sockets
// on one epoll instance; each connection keeps exactly one 64-byte message in flight: when its echo
// is complete (all 64 bytes back and equal to what was sent) the next message goes out. One
// benchmark iteration = one epoll_wait round; items_per_second = echoed messages per wall second.
// Server start, connects and teardown happen outside the timed loop. Run time is bounded by
// MinTime per benchmark (x repetitions from bench.sh).
#include <arpa/inet.h>
#include <benchmark/benchmark.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <sched.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <atomic>
#include <cstring>
#include <future>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "uring/uring_server.hpp"

namespace uring = hypergate::uring;

namespace {

constexpr std::size_t kMessage = 64;     // bytes per ping
constexpr int kServerCore = 0;
constexpr int kWaitMs = 2000;            // an epoll round with no echo for this long is a failure

void pin(int core) {
  const int n = static_cast<int>(std::thread::hardware_concurrency());
  if (n <= 0) return;
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(core % n, &set);
  (void)pthread_setaffinity_np(pthread_self(), sizeof set, &set);  // best effort
}

uring::ServerOptions bench_options(std::uint32_t connections) {
  uring::ServerOptions o;
  o.host = "127.0.0.1";
  o.port = 0;
  o.max_connections = connections + 16;
  o.idle_timeout_ns = 0;
  o.header_timeout_ns = 0;
  o.input_bytes = 16 * 1024;   // ping-pong keeps at most 64 bytes in flight per connection
  o.output_bytes = 16 * 1024;
  return o;
}

/// A server on its own pinned thread: created, run and torn down there (UringServer's contract).
class ServerThread {
 public:
  template <typename Start, typename Run, typename Stop>
  ServerThread(Start start, Run run, Stop stop) {
    std::promise<std::uint16_t> ready;  // 0 = failed
    auto started = ready.get_future();
    thread_ = std::thread([&ready, this, start, run, stop]() mutable {
      pin(kServerCore);
      const std::uint16_t port = start();
      ready.set_value(port);
      if (port != 0) run(stop_);
      stop();
    });
    port_ = started.get();
  }
  ~ServerThread() {
    stop_.store(true, std::memory_order_release);  // release: pairs with the acquire-load in run()
    thread_.join();
  }
  [[nodiscard]] std::uint16_t port() const { return port_; }

 private:
  std::atomic<bool> stop_{false};
  std::thread thread_;
  std::uint16_t port_ = 0;
};

struct ClientConn {
  int fd = -1;
  std::uint32_t got = 0;  // bytes of the current echo received
  std::uint8_t seq = 0;   // first byte of the message in flight
};

/// Drives `connections` ping-pong clients against 127.0.0.1:port inside the benchmark loop.
void run_clients(benchmark::State& state, std::uint16_t port) {
  const auto n = static_cast<std::size_t>(state.range(0));
  std::vector<ClientConn> conns(n);
  const int ep = epoll_create1(EPOLL_CLOEXEC);
  bool ok = ep >= 0;
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  for (std::size_t i = 0; ok && i < n; ++i) {
    const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) {
      if (fd >= 0) close(fd);
      ok = false;
      break;
    }
    const int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) != 0) ok = false;
    conns[i].fd = fd;
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = i;
    if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) != 0) ok = false;
  }
  std::array<char, kMessage> out{};
  std::array<char, 4096> in{};
  auto send_ping = [&](ClientConn& c) {
    std::memset(out.data(), static_cast<char>(c.seq), out.size());
    c.got = 0;
    return send(c.fd, out.data(), out.size(), MSG_NOSIGNAL | MSG_DONTWAIT) == static_cast<ssize_t>(out.size());
  };
  for (std::size_t i = 0; ok && i < n; ++i) ok = send_ping(conns[i]);
  if (!ok) state.SkipWithError("client setup failed");

  std::vector<epoll_event> events(std::max<std::size_t>(n, 1));
  std::uint64_t echoed = 0;
  for (auto _ : state) {
    if (!ok) continue;
    const int ready = epoll_wait(ep, events.data(), static_cast<int>(events.size()), kWaitMs);
    if (ready <= 0) {
      state.SkipWithError("no echo within the wait limit");
      ok = false;
      continue;
    }
    for (int e = 0; e < ready; ++e) {
      ClientConn& c = conns[events[static_cast<std::size_t>(e)].data.u64];
      const ssize_t r = recv(c.fd, in.data(), kMessage - c.got, MSG_DONTWAIT);
      if (r <= 0) {
        if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) continue;
        state.SkipWithError("connection closed by the server");
        ok = false;
        break;
      }
      if (in[0] != static_cast<char>(c.seq)) {
        state.SkipWithError("echo carried the wrong bytes");
        ok = false;
        break;
      }
      c.got += static_cast<std::uint32_t>(r);
      if (c.got == kMessage) {
        ++echoed;
        ++c.seq;
        if (!send_ping(c)) {
          state.SkipWithError("send failed");
          ok = false;
          break;
        }
      }
    }
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(echoed));
  state.counters["connections"] = static_cast<double>(n);
  for (auto& c : conns) {
    if (c.fd >= 0) close(c.fd);
  }
  if (ep >= 0) close(ep);
}

void BM_echo_uring(benchmark::State& state) {
  const auto o = bench_options(static_cast<std::uint32_t>(state.range(0)));
  uring::EchoHandler handler;
  uring::UringServer server(o, handler);
  ServerThread t([&] { return server.start().ok() ? server.port() : std::uint16_t{0}; },
                 [&](const std::atomic<bool>& stop) { server.run(stop); }, [&] { server.stop(); });
  if (t.port() == 0) {
    state.SkipWithError("io_uring server did not start");
    for (auto _ : state) {
    }
    return;
  }
  run_clients(state, t.port());
}

void BM_echo_epoll(benchmark::State& state) {
  const auto o = bench_options(static_cast<std::uint32_t>(state.range(0)));
  uring::EpollEchoServer server(o);
  ServerThread t([&] { return server.start().ok() ? server.port() : std::uint16_t{0}; },
                 [&](const std::atomic<bool>& stop) { server.run(stop); }, [&] { server.stop(); });
  if (t.port() == 0) {
    state.SkipWithError("epoll server did not start");
    for (auto _ : state) {
    }
    return;
  }
  run_clients(state, t.port());
}

}  // namespace

BENCHMARK(BM_echo_uring)->Name("echo/uring")->ArgName("conns")->Arg(1)->Arg(64)->Arg(512)->UseRealTime()->MinTime(0.5);
BENCHMARK(BM_echo_epoll)->Name("echo/epoll")->ArgName("conns")->Arg(1)->Arg(64)->Arg(512)->UseRealTime()->MinTime(0.5);

BENCHMARK_MAIN();
