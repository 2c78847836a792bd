// io_uring TCP transport: UringServer with the echo handler (and the epoll baseline) started in-process
// on 127.0.0.1, port 0, and driven with real sockets: many connections, large messages, peer reset,
// idle and header timeouts, the connection limit.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <future>
#include <string>
#include <thread>
#include <vector>

#include "uring/uring_server.hpp"

#include "loopback.hpp"
#include "uring_test_server.hpp"

namespace hypergate::uring {
namespace {

using namespace std::chrono_literals;
using namespace hypergate::test;
using namespace hypergate::uring::test;

/// True when the peer closed the connection (EOF or reset) within `limit`.
bool closed_within(int fd, std::chrono::milliseconds limit) {
  pollfd p{fd, POLLIN, 0};
  if (poll(&p, 1, static_cast<int>(limit.count())) <= 0) return false;
  char c;
  return recv(fd, &c, 1, MSG_DONTWAIT) <= 0;
}

ServerOptions local(std::uint32_t max_connections = 256) {
  ServerOptions o;
  o.host = "127.0.0.1";
  o.port = 0;
  o.max_connections = max_connections;
  o.buffer_count = 256;
  o.input_bytes = 64 * 1024;
  o.output_bytes = 64 * 1024;
  return o;
}

TEST(Echo, EchoesOneMessage) {
  RunningEcho echo(local());
  ASSERT_TRUE(echo.ok()) << echo.error();
  ASSERT_NE(echo.port(), 0);
  const int fd = connect_to(echo.port());
  ASSERT_GE(fd, 0);
  ASSERT_TRUE(send_all(fd, "hello uring"));
  EXPECT_EQ(recv_exactly(fd, 11), "hello uring");
  int nodelay = 0;
  socklen_t len = sizeof(nodelay);
  getsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &nodelay, &len);  // client side: just a sanity read
  close(fd);
}

TEST(Echo, ManyConnectionsManyMessages) {
  RunningEcho echo(local(512));
  ASSERT_TRUE(echo.ok()) << echo.error();
  constexpr int kConns = 200;
  std::vector<int> fds;
  for (int i = 0; i < kConns; ++i) {
    fds.push_back(connect_to(echo.port()));
    ASSERT_GE(fds.back(), 0) << i;
  }
  for (int round = 0; round < 5; ++round) {
    for (int i = 0; i < kConns; ++i) ASSERT_TRUE(send_all(fds[i], "c" + std::to_string(i) + "r" + std::to_string(round) + ";"));
    for (int i = 0; i < kConns; ++i) {
      const std::string want = "c" + std::to_string(i) + "r" + std::to_string(round) + ";";
      ASSERT_EQ(recv_exactly(fds[i], want.size()), want) << i;
    }
  }
  for (int fd : fds) close(fd);
  const auto deadline = std::chrono::steady_clock::now() + 5s;
  while (echo.stats().active != 0 && std::chrono::steady_clock::now() < deadline) std::this_thread::sleep_for(10ms);
  const ServerStats s = echo.stats();
  EXPECT_EQ(s.accepted, static_cast<std::uint64_t>(kConns));
  EXPECT_EQ(s.active, 0u);
  EXPECT_EQ(s.closed, static_cast<std::uint64_t>(kConns));
}

TEST(Echo, LargeMessagesRoundTripWithBackpressure) {
  RunningEcho echo(local());
  ASSERT_TRUE(echo.ok()) << echo.error();
  std::string big(4 * 1024 * 1024, '\0');
  for (std::size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>('a' + (i * 7919) % 26);
  const int fd = connect_to(echo.port());
  ASSERT_GE(fd, 0);
  const std::string got = echo_round_trip(fd, big);
  EXPECT_EQ(got.size(), big.size());
  EXPECT_TRUE(got == big);
  // The connection still works afterwards.
  ASSERT_TRUE(send_all(fd, "after"));
  EXPECT_EQ(recv_exactly(fd, 5), "after");
  close(fd);
}

TEST(Echo, PeerResetIsCleanAndServerKeepsServing) {
  RunningEcho echo(local());
  ASSERT_TRUE(echo.ok()) << echo.error();
  for (int i = 0; i < 20; ++i) {
    const int fd = connect_to(echo.port());
    ASSERT_GE(fd, 0);
    ASSERT_TRUE(send_all(fd, std::string(10000, 'x')));
    linger lg{1, 0};  // close with RST
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
    close(fd);
  }
  const int fd = connect_to(echo.port());
  ASSERT_GE(fd, 0);
  ASSERT_TRUE(send_all(fd, "still here"));
  EXPECT_EQ(recv_exactly(fd, 10), "still here");
  close(fd);
  const auto deadline = std::chrono::steady_clock::now() + 5s;
  while (echo.stats().closed < 21 && std::chrono::steady_clock::now() < deadline) std::this_thread::sleep_for(10ms);
  EXPECT_EQ(echo.stats().closed, 21u);
  EXPECT_EQ(echo.stats().active, 0u);
}

TEST(Echo, IdleTimeoutClosesOnlyIdleConnections) {
  ServerOptions o = local();
  o.idle_timeout_ns = 300'000'000;
  RunningEcho echo(o);
  ASSERT_TRUE(echo.ok()) << echo.error();
  const int idle = connect_to(echo.port());
  const int busy = connect_to(echo.port());
  ASSERT_GE(idle, 0);
  ASSERT_GE(busy, 0);
  const auto start = std::chrono::steady_clock::now();
  bool idle_closed = false;
  while (std::chrono::steady_clock::now() - start < 3s && !idle_closed) {
    ASSERT_TRUE(send_all(busy, "ping"));
    ASSERT_EQ(recv_exactly(busy, 4), "ping");  // the busy one keeps being served
    idle_closed = closed_within(idle, 100ms);
  }
  EXPECT_TRUE(idle_closed);
  EXPECT_GE(echo.stats().timeouts, 1u);
  ASSERT_TRUE(send_all(busy, "pong"));
  EXPECT_EQ(recv_exactly(busy, 4), "pong");
  close(idle);
  close(busy);
}

/// Keeps an unconsumed tail: what the HTTP handler does with a partial request.
class LineHandler final : public ConnectionHandler {
 public:
  std::size_t on_data(Connection& c, std::span<char> data) noexcept override {
    std::size_t used = 0;
    for (std::size_t i = 0; i < data.size(); ++i) {
      if (data[i] == '\n') {
        c.write(std::string_view(data.data() + used, i + 1 - used));
        used = i + 1;
      }
    }
    return used;
  }
};

TEST(Echo, HeaderTimeoutClosesSlowPartialMessages) {
  ServerOptions o = local();
  o.header_timeout_ns = 300'000'000;
  LineHandler handler;
  RunningServer server(o, handler);
  ASSERT_TRUE(server.ok()) << server.error();
  const int slow = connect_to(server.port());
  const int good = connect_to(server.port());
  ASSERT_TRUE(send_all(good, "split "));
  ASSERT_TRUE(send_all(good, "line\n"));
  EXPECT_EQ(recv_exactly(good, 11), "split line\n");  // the tail was kept and completed
  bool closed = false;
  for (int i = 0; i < 30 && !closed; ++i) {  // one byte every 100 ms, never a full line
    send(slow, "x", 1, MSG_NOSIGNAL);
    closed = closed_within(slow, 100ms);
  }
  EXPECT_TRUE(closed);
  ASSERT_TRUE(send_all(good, "ok\n"));
  EXPECT_EQ(recv_exactly(good, 3), "ok\n");
  close(slow);
  close(good);
  EXPECT_GE(server.stats().timeouts, 1u);
}

TEST(Echo, ConnectionLimitRefusesExtraConnections) {
  RunningEcho echo(local(4));
  ASSERT_TRUE(echo.ok()) << echo.error();
  std::vector<int> fds;
  for (int i = 0; i < 4; ++i) {
    fds.push_back(connect_to(echo.port()));
    ASSERT_TRUE(send_all(fds.back(), "x"));
    ASSERT_EQ(recv_exactly(fds.back(), 1), "x");
  }
  const int extra = connect_to(echo.port());  // the TCP handshake completes; the server drops it
  ASSERT_GE(extra, 0);
  EXPECT_TRUE(closed_within(extra, 3000ms));
  const auto deadline = std::chrono::steady_clock::now() + 3s;  // the loop counts it after the kernel closed it
  while (echo.stats().rejected == 0 && std::chrono::steady_clock::now() < deadline) std::this_thread::sleep_for(10ms);
  EXPECT_GE(echo.stats().rejected, 1u);
  EXPECT_EQ(echo.stats().active, 4u);
  close(extra);
  close(fds[0]);
  // A slot is free again: a new connection is served.
  std::this_thread::sleep_for(200ms);
  const int again = connect_to(echo.port());
  ASSERT_TRUE(send_all(again, "y"));
  EXPECT_EQ(recv_exactly(again, 1), "y");
  close(again);
  for (std::size_t i = 1; i < fds.size(); ++i) close(fds[i]);
}

TEST(Echo, ReusePortLetsTwoWorkersShareAPort) {
  RunningEcho first(local());
  ASSERT_TRUE(first.ok()) << first.error();
  ServerOptions o = local();
  o.port = first.port();
  RunningEcho second(o);
  ASSERT_TRUE(second.ok()) << second.error();
  for (int i = 0; i < 20; ++i) {
    const int fd = connect_to(first.port());
    ASSERT_TRUE(send_all(fd, "r"));
    EXPECT_EQ(recv_exactly(fd, 1), "r");
    close(fd);
  }
  EXPECT_EQ(first.stats().accepted + second.stats().accepted, 20u);
}

TEST(EpollEcho, BaselineEchoes) {
  EpollEchoServer server(local());
  ASSERT_TRUE(server.start().ok());
  std::atomic<bool> stop{false};
  std::thread t([&] { server.run(stop); });
  const int fd = connect_to(server.port());
  ASSERT_GE(fd, 0);
  std::string big(1 << 20, 'e');
  EXPECT_EQ(echo_round_trip(fd, big).size(), big.size());
  ASSERT_TRUE(send_all(fd, "small"));
  EXPECT_EQ(recv_exactly(fd, 5), "small");
  close(fd);
  stop.store(true, std::memory_order_release);  // release: pairs with the acquire-load in run()
  t.join();
}

}  // namespace
}  // namespace hypergate::uring
