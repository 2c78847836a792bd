// `scripts/bench.sh wire`: wire-to-subscriber latency over loopback. One sample = one MoldUDP64 datagram
// carrying one ITCH Add Order at a new best bid, sent over UDP; the clock stops when the SoupBinTCP
// subscriber has read the resulting Sequenced Data packet (a normalized top-of-book update).
//   wire/hypergate/udp_to_soupbintcp    the real `hypergate` binary (udp source -> itch pipeline -> valve
//                                       lane -> soupbintcp sink), pinned to core 0, idle = "busy"
//   wire/udp_tcp_forwarder/udp_to_tcp   the floor: a busy-polling thread on core 0 that reads the datagram
//                                       and writes a 55-byte frame to the TCP subscriber (no decoding)
// The client (sender and subscriber, one thread) runs on the core bench.sh pins. Reported per run:
// p50/p99/p99.9/max ns in counters (HdrHistogram, 3 digits) and items_per_second = round trips.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <benchmark/benchmark.h>

#include <array>
#include <atomic>
#include <chrono>
#include <cstring>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "hypergate/core/clock.hpp"
#include "hypergate/metrics/hdr_histogram.hpp"
#include "protocols/itch50.hpp"
#include "protocols/moldudp64.hpp"

extern char** environ;

namespace {

namespace hg = hypergate;
namespace itch = hypergate::protocols::itch;
namespace mold = hypergate::protocols::mold;

constexpr int kSamples = 20'000;
constexpr int kWarmup = 2'000;

std::uint16_t free_port(int type) {
  const int fd = socket(AF_INET, type, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  close(fd);
  return ntohs(a.sin_port);
}

sockaddr_in loopback(std::uint16_t port) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return a;
}

bool read_exact(int fd, char* p, std::size_t n) {
  while (n > 0) {
    const ssize_t r = recv(fd, p, n, 0);
    if (r <= 0) return false;
    p += r;
    n -= static_cast<std::size_t>(r);
  }
  return true;
}

// Reads SoupBinTCP packets until a Sequenced Data one; false if the stream ends.
bool read_sequenced(int fd) {
  for (;;) {
    char hdr[3];
    if (!read_exact(fd, hdr, 3)) return false;
    const std::size_t len = (static_cast<unsigned char>(hdr[0]) << 8) | static_cast<unsigned char>(hdr[1]);
    std::array<char, 512> body{};
    if (len < 1 || len - 1 > body.size() || !read_exact(fd, body.data(), len - 1)) return false;
    if (hdr[2] == 'S') return true;
  }
}

// The feed: packet 0 names locate 1; packet i >= 1 adds a buy order one tick above the previous one.
class Feed {
 public:
  std::span<const std::byte> packet(std::uint64_t i) {
    mold::PacketBuilder b(buf_);
    b.start(mold::SessionName::from("WIREBENCH"), i + 1);
    std::array<std::byte, itch::kMaxMessageSize> msg{};
    std::size_t n = 0;
    if (i == 0) {
      itch::StockDirectory d;
      d.stock_locate = 1;
      d.stock = itch::Alpha<8>::from("WIRE");
      n = itch::encode(d, msg);
    } else {
      itch::AddOrder a;
      a.stock_locate = 1;
      a.order_ref = i;
      a.side = 'B';
      a.shares = 100;
      a.stock = itch::Alpha<8>::from("WIRE");
      a.price = static_cast<std::uint32_t>(100'000 + i);
      a.timestamp = i;
      n = itch::encode(a, msg);
    }
    (void)b.append(std::span<const std::byte>(msg.data(), n));
    return b.finish();
  }

 private:
  std::array<std::byte, 256> buf_{};
};

void report(benchmark::State& state, const hg::metrics::HdrHistogram& h) {
  state.counters["p50_ns"] = static_cast<double>(h.value_at_percentile(50));
  state.counters["p99_ns"] = static_cast<double>(h.value_at_percentile(99));
  state.counters["p999_ns"] = static_cast<double>(h.value_at_percentile(99.9));
  state.counters["max_ns"] = static_cast<double>(h.max());
}

// Sends the datagrams and times each until its update is read. Returns false if the stream broke.
bool measure(benchmark::State& state, int udp, const sockaddr_in& to, int tcp, Feed& feed, std::uint64_t& seq,
             hg::metrics::HdrHistogram& h) {
  const hg::TscClock& clock = hg::TscClock::instance();
  for (int i = 0; i < kWarmup + kSamples; ++i) {
    const auto p = feed.packet(seq++);
    const std::uint64_t t0 = hg::TscClock::ticks();
    if (sendto(udp, p.data(), p.size(), 0, reinterpret_cast<const sockaddr*>(&to), sizeof to) < 0) return false;
    if (!read_sequenced(tcp)) {
      state.SkipWithError("the subscriber stream ended");
      return false;
    }
    if (i >= kWarmup) h.record(clock.elapsed_ns(t0, hg::TscClock::ticks()));
  }
  return true;
}

void BM_Gateway(benchmark::State& state) {
  const std::uint16_t feed_port = free_port(SOCK_DGRAM);
  const std::uint16_t soup_port = free_port(SOCK_STREAM);
  const std::string cfg = "/tmp/hg_wire_bench_" + std::to_string(getpid()) + ".toml";
  {
    std::ofstream f(cfg);
    f << "[gateway]\nworkers = 1\ncores = [0]\nidle = \"busy\"\n[admin]\nenabled = false\n"
      << "[valves]\npolicy = \"spin\"\n"
      << "[source.feed]\ntype = \"udp\"\nlisten = \"127.0.0.1:" << feed_port << "\"\npipeline = \"itch\"\n"
      << "[source.feed.pipeline_options]\nsinks = [\"subscribers\"]\n"
      << "[sink.subscribers]\ntype = \"soupbintcp\"\nlisten = \"127.0.0.1:" << soup_port
      << "\"\nusername = \"bench\"\npassword = \"bench\"\nsession = \"WIREBENCH\"\n";
  }
  const std::string bin = HG_BINARY_DIR "/framework/gateway/hypergate";
  std::vector<std::string> args{"taskset", "-c", "0", bin, "run", "--config", cfg, "-q"};
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, STDOUT_FILENO, "/dev/null", O_WRONLY, 0);
  pid_t pid = -1;
  if (posix_spawnp(&pid, "taskset", &fa, nullptr, argv.data(), environ) != 0) {
    state.SkipWithError("cannot start hypergate");
    return;
  }
  posix_spawn_file_actions_destroy(&fa);
  int tcp = -1;
  for (int i = 0; i < 200 && tcp < 0; ++i) {
    tcp = socket(AF_INET, SOCK_STREAM, 0);
    const sockaddr_in a = loopback(soup_port);
    if (connect(tcp, reinterpret_cast<const sockaddr*>(&a), sizeof a) != 0) {
      close(tcp);
      tcp = -1;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  }
  const int one = 1;
  setsockopt(tcp, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  // Login: user, password, session (blank = current), sequence 0 = live only.
  std::string body = "L";
  body += std::string("bench ") + "bench     " + std::string(10, ' ') + std::string(19, ' ') + "0";
  std::string login{static_cast<char>(0), static_cast<char>(body.size())};
  login += body;
  char accepted[3];
  bool ok = tcp >= 0 && send(tcp, login.data(), login.size(), 0) == static_cast<ssize_t>(login.size()) &&
            read_exact(tcp, accepted, 3) && accepted[2] == 'A';
  if (ok) {
    std::array<char, 64> rest{};
    const std::size_t len = (static_cast<unsigned char>(accepted[0]) << 8) | static_cast<unsigned char>(accepted[1]);
    ok = len >= 1 && len - 1 <= rest.size() && read_exact(tcp, rest.data(), len - 1);
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(200));  // the udp source starts after the sink
  const int udp = socket(AF_INET, SOCK_DGRAM, 0);
  const sockaddr_in to = loopback(feed_port);
  Feed feed;
  std::uint64_t seq = 0;
  auto h = hg::metrics::HdrHistogram::create(1, 10'000'000'000ull, 3).value();
  if (ok) {
    // The directory message first (its update is read like any other).
    const auto p = feed.packet(seq++);
    ok = sendto(udp, p.data(), p.size(), 0, reinterpret_cast<const sockaddr*>(&to), sizeof to) > 0 &&
         read_sequenced(tcp);
  }
  if (!ok) state.SkipWithError("could not log in to the gateway's SoupBinTCP sink");
  for (auto _ : state) {
    if (!ok || !measure(state, udp, to, tcp, feed, seq, h)) break;
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(h.total_count()));
  report(state, h);
  kill(pid, SIGTERM);
  int status = 0;
  waitpid(pid, &status, 0);
  close(udp);
  if (tcp >= 0) close(tcp);
  std::remove(cfg.c_str());
}
BENCHMARK(BM_Gateway)->Name("wire/hypergate/udp_to_soupbintcp")->Iterations(1)->UseRealTime()->Unit(benchmark::kMillisecond);

void BM_Forwarder(benchmark::State& state) {
  const std::uint16_t feed_port = free_port(SOCK_DGRAM);
  const int listener = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in la = loopback(0);
  bind(listener, reinterpret_cast<sockaddr*>(&la), sizeof la);
  listen(listener, 1);
  socklen_t ll = sizeof la;
  getsockname(listener, reinterpret_cast<sockaddr*>(&la), &ll);
  const int udp_in = socket(AF_INET, SOCK_DGRAM, 0);
  const sockaddr_in fa = loopback(feed_port);
  bind(udp_in, reinterpret_cast<const sockaddr*>(&fa), sizeof fa);
  std::atomic<bool> stop{false};
  std::thread fwd([&] {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(0, &set);
    pthread_setaffinity_np(pthread_self(), sizeof set, &set);
    const int conn = accept(listener, nullptr, nullptr);
    const int one = 1;
    setsockopt(conn, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    std::array<char, 2048> buf{};
    std::array<char, 55> frame{};
    frame[1] = 53;  // length: type + a 52-byte update, as the gateway sends
    frame[2] = 'S';
    while (!stop.load(std::memory_order_relaxed)) {  // relaxed: a lone stop flag
      const ssize_t n = recv(udp_in, buf.data(), buf.size(), MSG_DONTWAIT);
      if (n <= 0) continue;
      std::memcpy(frame.data() + 3, buf.data(), std::min<std::size_t>(52, static_cast<std::size_t>(n)));
      if (send(conn, frame.data(), frame.size(), MSG_NOSIGNAL) <= 0) break;
    }
    close(conn);
  });
  const int tcp = socket(AF_INET, SOCK_STREAM, 0);
  connect(tcp, reinterpret_cast<const sockaddr*>(&la), sizeof la);
  const int one = 1;
  setsockopt(tcp, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  const int udp = socket(AF_INET, SOCK_DGRAM, 0);
  Feed feed;
  std::uint64_t seq = 1;
  auto h = hg::metrics::HdrHistogram::create(1, 10'000'000'000ull, 3).value();
  for (auto _ : state) {
    if (!measure(state, udp, fa, tcp, feed, seq, h)) break;
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(h.total_count()));
  report(state, h);
  stop.store(true, std::memory_order_relaxed);
  shutdown(tcp, SHUT_RDWR);
  fwd.join();
  close(tcp);
  close(udp);
  close(udp_in);
  close(listener);
}
BENCHMARK(BM_Forwarder)->Name("wire/udp_tcp_forwarder/udp_to_tcp")->Iterations(1)->UseRealTime()->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
