// echo: 64-byte ping-pong messages per second through the io_uring echo server (UringServer +
// EchoHandler, the `echo` adapter's engine) against the plain epoll echo baseline (EpollEchoServer),
// in the same run, at 1, 64 and 512 concurrent connections.
//
//   echo/uring/conns:N   UringServer + EchoHandler on a thread pinned to core 0
//   echo/epoll/conns:N   EpollEchoServer on a thread pinned to core 0
//
// Reply size, plain send against send_zc (the measurement behind kDefaultSendZcThreshold):
//   echo/uring_send/size:S/conns:N      UringServer, send_zc_threshold 0 (every reply a plain send)
//   echo/uring_send_zc/size:S/conns:N   the same with send_zc_threshold 1 (every reply a send_zc)
// The handler answers each complete S-byte message with one S-byte write, so every reply is one send
// of exactly S bytes; S = 1, 4, 16, 64 KiB. bytes_per_second counts echoed bytes.
//
// Client: the benchmark thread (scripts/bench.sh pins it to the last core). Each connection keeps
// exactly one 64-byte message in flight: when its echo is complete (all 64 bytes back and equal to
// what was sent) the next message goes out. items_per_second = echoed messages per wall second.
//   echo/{uring,epoll}/conns:N              epoll client: N non-blocking sockets on one epoll instance,
//                                           a recv and a send call per echo; one iteration = one
//                                           epoll_wait round. At 64+ connections this one thread is
//                                           the limit (it pays the same per-message syscalls as the
//                                           epoll server), so both servers measure the client.
//   echo/{uring,epoll}/uring_client/conns:N io_uring client: a recv outstanding per connection, every
//                                           echo's send and next recv queued and submitted together,
//                                           one io_uring_submit_and_wait per round (= one iteration)
//                                           for all the connections that completed: the client costs
//                                           a fraction of a syscall per message and the server is the
//                                           limit.
// Server start, connects and teardown happen outside the timed loop. Run time is bounded by
// MinTime per benchmark (x repetitions from bench.sh).
#include <arpa/inet.h>
#include <benchmark/benchmark.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <bit>
#include <cerrno>
#include <atomic>
#include <cstring>
#include <future>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <liburing.h>

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

/// Drives `connections` ping-pong clients of `message`-byte messages against 127.0.0.1:port inside
/// the benchmark loop.
/// Connects n TCP_NODELAY sockets to 127.0.0.1:port (non-blocking ones when `nonblocking`); false
/// when one could not be made (those made are in `conns`, fd -1 for the rest).
bool connect_clients(std::vector<ClientConn>& conns, std::uint16_t port, bool nonblocking) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  for (ClientConn& c : conns) {
    const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) {
      if (fd >= 0) close(fd);
      return false;
    }
    c.fd = fd;
    const int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (nonblocking && fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) != 0) return false;
  }
  return true;
}

void close_clients(std::vector<ClientConn>& conns) {
  for (auto& c : conns) {
    if (c.fd >= 0) close(c.fd);
  }
}

void run_clients(benchmark::State& state, std::uint16_t port, std::size_t n, std::size_t message = kMessage) {
  std::vector<ClientConn> conns(n);
  const int ep = epoll_create1(EPOLL_CLOEXEC);
  bool ok = ep >= 0 && connect_clients(conns, port, true);
  for (std::size_t i = 0; ok && i < n; ++i) {
    const int fd = conns[i].fd;
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = i;
    if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) != 0) ok = false;
  }
  std::vector<char> out(message);
  std::vector<char> in(std::max<std::size_t>(message, 4096));
  auto send_ping = [&](ClientConn& c) {
    std::memset(out.data(), static_cast<char>(c.seq), out.size());
    c.got = 0;
    // The echo of the previous message was read completely, so the server reads this one: a short
    // send (socket buffer) only has to wait for it.
    std::size_t sent = 0;
    while (sent < out.size()) {
      const ssize_t w = send(c.fd, out.data() + sent, out.size() - sent, MSG_NOSIGNAL | MSG_DONTWAIT);
      if (w > 0) {
        sent += static_cast<std::size_t>(w);
      } else if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        pollfd p{c.fd, POLLOUT, 0};
        if (poll(&p, 1, kWaitMs) <= 0) return false;
      } else {
        return false;
      }
    }
    return true;
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
      const ssize_t r = recv(c.fd, in.data(), std::min(message - c.got, in.size()), MSG_DONTWAIT);
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
      if (c.got == message) {
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
  state.SetBytesProcessed(static_cast<std::int64_t>(echoed * message));
  state.counters["connections"] = static_cast<double>(n);
  close_clients(conns);
  if (ep >= 0) close(ep);
}

/// The same ping-pong as run_clients() through one io_uring: each connection has a recv outstanding;
/// a completed echo queues the next message's send and the recv of its echo, and every round submits
/// what the last one queued and waits for at least one completion in the same call.
void run_uring_clients(benchmark::State& state, std::uint16_t port, std::size_t n) {
  constexpr std::size_t message = kMessage;
  std::vector<ClientConn> conns(n);
  bool ok = connect_clients(conns, port, false);   // io_uring waits for data itself: blocking sockets
  io_uring ring{};
  io_uring_params params{};
  params.flags = IORING_SETUP_COOP_TASKRUN | IORING_SETUP_SINGLE_ISSUER;
  // Two requests per connection can be queued at once (a send and a recv), plus a resent remainder.
  const auto entries = static_cast<unsigned>(std::bit_ceil(std::max<std::size_t>(4 * n, 8)));
  const bool ring_ok = ok && io_uring_queue_init_params(entries, &ring, &params) == 0;
  ok = ring_ok;
  // Per connection: the message it sent (a send completes once the kernel copied it) and its echo.
  std::vector<std::array<char, message>> out(n);
  std::vector<std::array<char, message>> in(n);
  enum Kind : std::uint64_t { kSend = 0, kRecv = 1 };
  auto tag = [](std::size_t i, Kind k) { return static_cast<std::uint64_t>(i) << 1 | k; };
  auto queue_recv = [&](std::size_t i) {
    io_uring_sqe* sqe = io_uring_get_sqe(&ring);
    if (sqe == nullptr) return false;
    ClientConn& c = conns[i];
    io_uring_prep_recv(sqe, c.fd, in[i].data() + c.got, message - c.got, 0);
    io_uring_sqe_set_data64(sqe, tag(i, kRecv));
    return true;
  };
  auto queue_send = [&](std::size_t i, std::size_t from) {
    io_uring_sqe* sqe = io_uring_get_sqe(&ring);
    if (sqe == nullptr) return false;
    io_uring_prep_send(sqe, conns[i].fd, out[i].data() + from, message - from, MSG_NOSIGNAL);
    io_uring_sqe_set_data64(sqe, tag(i, kSend) | static_cast<std::uint64_t>(from) << 32);
    return true;
  };
  auto ping = [&](std::size_t i) {
    ClientConn& c = conns[i];
    out[i].fill(static_cast<char>(c.seq));
    c.got = 0;
    return queue_send(i, 0) && queue_recv(i);
  };
  for (std::size_t i = 0; ok && i < n; ++i) ok = ping(i);
  if (!ok) state.SkipWithError("io_uring client setup failed");

  std::uint64_t echoed = 0;
  const __kernel_timespec wait{kWaitMs / 1000, (kWaitMs % 1000) * 1'000'000L};
  for (auto _ : state) {
    if (!ok) continue;
    io_uring_cqe* first = nullptr;
    if (io_uring_submit_and_wait_timeout(&ring, &first, 1, const_cast<__kernel_timespec*>(&wait), nullptr) < 0 ||
        first == nullptr) {
      state.SkipWithError("no echo within the wait limit");
      ok = false;
      continue;
    }
    unsigned seen = 0;
    unsigned head;
    io_uring_cqe* cqe;
    io_uring_for_each_cqe(&ring, head, cqe) {
      ++seen;
      if (!ok) continue;
      const std::uint64_t d = io_uring_cqe_get_data64(cqe);
      const std::size_t i = static_cast<std::size_t>((d & 0xFFFFFFFFu) >> 1);
      ClientConn& c = conns[i];
      if ((d & 1) == kSend) {
        const std::size_t from = static_cast<std::size_t>(d >> 32);
        if (cqe->res <= 0) {
          state.SkipWithError("send failed");
          ok = false;
        } else if (from + static_cast<std::size_t>(cqe->res) < message) {
          ok = queue_send(i, from + static_cast<std::size_t>(cqe->res));   // short send: the rest
        }
        continue;
      }
      if (cqe->res <= 0) {
        state.SkipWithError("connection closed by the server");
        ok = false;
        continue;
      }
      const auto got = static_cast<std::uint32_t>(cqe->res);
      if (static_cast<unsigned char>(in[i][c.got]) != c.seq) {
        state.SkipWithError("echo carried the wrong bytes");
        ok = false;
        continue;
      }
      c.got += got;
      if (c.got < message) {
        ok = queue_recv(i);
        continue;
      }
      ++echoed;
      ++c.seq;
      ok = ping(i);
    }
    io_uring_cq_advance(&ring, seen);
    if (!ok && !state.error_occurred()) state.SkipWithError("io_uring client: submission queue full");
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(echoed));
  state.SetBytesProcessed(static_cast<std::int64_t>(echoed * message));
  state.counters["connections"] = static_cast<double>(n);
  // Closing the sockets ends the recvs still outstanding; the ring goes after them.
  close_clients(conns);
  if (ring_ok) io_uring_queue_exit(&ring);
}

/// Runs `server` (UringServer or EpollEchoServer) on the server core and `clients(port)` on this
/// thread; a server that does not start skips the benchmark with `what`.
template <class Server, class Clients>
void with_server(benchmark::State& state, Server& server, const char* what, Clients&& clients) {
  ServerThread t([&] { return server.start().ok() ? server.port() : std::uint16_t{0}; },
                 [&](const std::atomic<bool>& stop) { server.run(stop); }, [&] { server.stop(); });
  if (t.port() == 0) {
    state.SkipWithError(what);
    for (auto _ : state) {
    }
    return;
  }
  clients(t.port());
}

void BM_echo_uring(benchmark::State& state) {
  const auto o = bench_options(static_cast<std::uint32_t>(state.range(0)));
  uring::EchoHandler handler;
  uring::UringServer server(o, handler);
  with_server(state, server, "io_uring server did not start",
              [&](std::uint16_t port) { run_clients(state, port, static_cast<std::size_t>(state.range(0))); });
}

void BM_echo_epoll(benchmark::State& state) {
  const auto o = bench_options(static_cast<std::uint32_t>(state.range(0)));
  uring::EpollEchoServer server(o);
  with_server(state, server, "epoll server did not start",
              [&](std::uint16_t port) { run_clients(state, port, static_cast<std::size_t>(state.range(0))); });
}

void BM_echo_uring_uring_client(benchmark::State& state) {
  const auto o = bench_options(static_cast<std::uint32_t>(state.range(0)));
  uring::EchoHandler handler;
  uring::UringServer server(o, handler);
  with_server(state, server, "io_uring server did not start",
              [&](std::uint16_t port) { run_uring_clients(state, port, static_cast<std::size_t>(state.range(0))); });
}

void BM_echo_epoll_uring_client(benchmark::State& state) {
  const auto o = bench_options(static_cast<std::uint32_t>(state.range(0)));
  uring::EpollEchoServer server(o);
  with_server(state, server, "epoll server did not start",
              [&](std::uint16_t port) { run_uring_clients(state, port, static_cast<std::size_t>(state.range(0))); });
}

/// Answers every complete `size`-byte message with one write of it: one send of exactly `size` bytes.
class FixedSizeEchoHandler final : public uring::ConnectionHandler {
 public:
  explicit FixedSizeEchoHandler(std::size_t size) : size_(size) {}
  std::size_t on_data(uring::Connection& c, std::span<char> data) noexcept override {
    std::size_t used = 0;
    while (data.size() - used >= size_ && c.write(std::string_view(data.data() + used, size_))) used += size_;
    return used;
  }

 private:
  std::size_t size_;
};

/// range(0) = reply size, range(1) = connections; `threshold` = send_zc_threshold.
void echo_reply_size(benchmark::State& state, std::uint32_t threshold) {
  const auto size = static_cast<std::size_t>(state.range(0));
  const auto conns = static_cast<std::uint32_t>(state.range(1));
  auto o = bench_options(conns);
  o.send_zc_threshold = threshold;
  o.buffer_size = 16 * 1024;
  o.buffer_count = 1024;
  o.input_bytes = static_cast<std::uint32_t>(std::max<std::size_t>(4 * size, 2 * o.buffer_size));
  o.output_bytes = static_cast<std::uint32_t>(2 * size);
  FixedSizeEchoHandler handler(size);
  uring::UringServer server(o, handler);
  with_server(state, server, "io_uring server did not start", [&](std::uint16_t port) {
    run_clients(state, port, conns, size);
    const uring::ServerStats s = server.stats();  // relaxed counters: a late reading is fine here
    state.counters["zc_sends"] = static_cast<double>(s.zc_sends);
    state.counters["zc_copied"] = static_cast<double>(s.zc_copied);
    state.counters["zc_fallbacks"] = static_cast<double>(s.zc_fallbacks);
  });
}

void BM_echo_uring_send(benchmark::State& state) { echo_reply_size(state, 0); }
void BM_echo_uring_send_zc(benchmark::State& state) { echo_reply_size(state, 1); }

void reply_sizes(benchmark::internal::Benchmark* b) {
  b->ArgNames({"size", "conns"});
  for (const int conns : {1, 16}) {
    for (const int size : {1024, 4096, 16384, 65536}) b->Args({size, conns});
  }
  b->UseRealTime()->MinTime(0.5);
}

}  // namespace

BENCHMARK(BM_echo_uring_send)->Name("echo/uring_send")->Apply(reply_sizes);
BENCHMARK(BM_echo_uring_send_zc)->Name("echo/uring_send_zc")->Apply(reply_sizes);
BENCHMARK(BM_echo_uring)->Name("echo/uring")->ArgName("conns")->Arg(1)->Arg(64)->Arg(512)->UseRealTime()->MinTime(0.5);
BENCHMARK(BM_echo_epoll)->Name("echo/epoll")->ArgName("conns")->Arg(1)->Arg(64)->Arg(512)->UseRealTime()->MinTime(0.5);
BENCHMARK(BM_echo_uring_uring_client)->Name("echo/uring/uring_client")->ArgName("conns")->Arg(1)->Arg(64)->Arg(512)
    ->UseRealTime()->MinTime(0.5);
BENCHMARK(BM_echo_epoll_uring_client)->Name("echo/epoll/uring_client")->ArgName("conns")->Arg(1)->Arg(64)->Arg(512)
    ->UseRealTime()->MinTime(0.5);

BENCHMARK_MAIN();
