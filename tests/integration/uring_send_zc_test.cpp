// io_uring TCP transport, zero-copy replies: UringServer + EchoHandler on 127.0.0.1 with
// send_zc_threshold set, driven with real sockets. Echoes of every size around and far above the
// threshold come back byte-exact; a slow reader forces partial sends; every zero-copy send gets its
// notification; threshold 0 never uses send_zc; a kernel refusal falls back to plain sends for good;
// connections closed (or the server stopped) with notifications outstanding are clean (run it in the
// asan build: a buffer reused before its notification would corrupt an echo, an early free would be
// reported).
#include <netinet/in.h>
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

/// Waits until every zero-copy notification came, no connection is open and the loop has taken at least
/// `arrivals` connections off the listen queue (accepted or refused). A client that closes without a
/// round trip leaves its connection in the queue until the loop gets to it: on a loaded machine
/// `active == 0` can hold before the loop has seen the last clients at all.
ServerStats settle(const RunningEcho& echo, std::uint64_t arrivals = 0) {
  const auto deadline = std::chrono::steady_clock::now() + 5s;
  ServerStats s = echo.stats();
  while ((s.zc_outstanding != 0 || s.active != 0 || s.accepted + s.rejected < arrivals) &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(5ms);
    s = echo.stats();
  }
  return s;
}

ServerOptions zc_options(std::uint32_t threshold) {
  ServerOptions o;
  o.host = "127.0.0.1";
  o.port = 0;
  o.max_connections = 64;
  o.buffer_count = 256;
  o.input_bytes = 64 * 1024;
  o.output_bytes = 64 * 1024;
  o.send_zc_threshold = threshold;
  return o;
}

std::string pattern(std::size_t n, std::size_t seed) {
  std::string s(n, '\0');
  for (std::size_t i = 0; i < n; ++i) s[i] = static_cast<char>((i * 7919 + seed * 104729 + (i >> 12)) & 0xff);
  return s;
}


TEST(UringSendZc, EchoesEverySizeExactlyAndEverySendIsNotified) {
  RunningEcho echo(zc_options(4096));
  ASSERT_TRUE(echo.ok()) << echo.error();
  const int fd = connect_to(echo.port());
  ASSERT_GE(fd, 0);
  const std::size_t sizes[] = {1,     100,   4095,       4096,        4097,           16 * 1024,
                               65535, 65536, 65537,      300'000,     1 << 20,        (3 << 20) + 7,
                               8 << 20};
  std::size_t seed = 0;
  for (const std::size_t n : sizes) {
    const std::string msg = pattern(n, ++seed);
    const std::string got = echo_round_trip(fd, msg);
    ASSERT_EQ(got.size(), msg.size()) << "size " << n;
    ASSERT_TRUE(got == msg) << "echo of " << n << " bytes differs";
  }
  // Small messages on the same connection afterwards go out with a plain send, and are exact too.
  ASSERT_TRUE(send_all(fd, "small"));
  EXPECT_EQ(recv_exactly(fd, 5), "small");
  close(fd);
  const ServerStats s = settle(echo);
  EXPECT_GT(s.zc_sends, 0u);
  EXPECT_EQ(s.zc_notifications, s.zc_sends);
  EXPECT_EQ(s.zc_outstanding, 0u);
  EXPECT_EQ(s.zc_fallbacks, 0u);
  EXPECT_LE(s.zc_copied, s.zc_notifications);
  EXPECT_EQ(s.closed, 1u);
  std::printf("zc_sends %llu, notifications %llu (copied by the kernel: %llu), partial sends %llu\n",
              static_cast<unsigned long long>(s.zc_sends), static_cast<unsigned long long>(s.zc_notifications),
              static_cast<unsigned long long>(s.zc_copied), static_cast<unsigned long long>(s.partial_sends));
}

TEST(UringSendZc, SlowReaderForcesPartialSendsAndTheEchoStaysExact) {
  RunningEcho echo(zc_options(1024));
  ASSERT_TRUE(echo.ok()) << echo.error();
  const int fd = connect_to(echo.port());
  ASSERT_GE(fd, 0);
  const int small = 16 * 1024;  // a small receive window: the server's 64 KiB sends cannot fit
  setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
  const std::string msg = pattern(4 << 20, 77);
  const std::string got = echo_round_trip(fd, msg, 200us, 4096);
  ASSERT_EQ(got.size(), msg.size());
  EXPECT_TRUE(got == msg);
  close(fd);
  const ServerStats s = settle(echo);
  EXPECT_GT(s.partial_sends, 0u);
  EXPECT_GT(s.zc_sends, 0u);
  EXPECT_EQ(s.zc_notifications, s.zc_sends);
}

TEST(UringSendZc, ManyConnectionsInterleaved) {
  RunningEcho echo(zc_options(2048));
  ASSERT_TRUE(echo.ok()) << echo.error();
  constexpr int kConns = 8;
  std::vector<std::thread> clients;
  std::atomic<int> exact{0};
  for (int c = 0; c < kConns; ++c) {
    clients.emplace_back([&, c] {
      const int fd = connect_to(echo.port());
      if (fd < 0) return;
      bool all = true;
      for (int m = 0; m < 6 && all; ++m) {
        const std::string msg = pattern(static_cast<std::size_t>(1000 + (c * 7 + m) * 90'001), c * 100 + m);
        all = echo_round_trip(fd, msg) == msg;
      }
      close(fd);
      if (all) exact.fetch_add(1, std::memory_order_relaxed);  // relaxed: read after join()
    });
  }
  for (auto& t : clients) t.join();
  EXPECT_EQ(exact.load(std::memory_order_relaxed), kConns);
  const ServerStats s = settle(echo);
  EXPECT_GT(s.zc_sends, 0u);
  EXPECT_EQ(s.zc_notifications, s.zc_sends);
  EXPECT_EQ(s.closed, static_cast<std::uint64_t>(kConns));
}

TEST(UringSendZc, ThresholdZeroNeverSendsZeroCopy) {
  RunningEcho echo(zc_options(0));
  ASSERT_TRUE(echo.ok()) << echo.error();
  const int fd = connect_to(echo.port());
  ASSERT_GE(fd, 0);
  const std::string msg = pattern(2 << 20, 5);
  EXPECT_TRUE(echo_round_trip(fd, msg) == msg);
  close(fd);
  const ServerStats s = settle(echo);
  EXPECT_EQ(s.zc_sends, 0u);
  EXPECT_EQ(s.zc_notifications, 0u);
  EXPECT_EQ(s.zc_fallbacks, 0u);
  EXPECT_EQ(s.bytes_out, msg.size());
}

TEST(UringSendZc, ThresholdAboveTheReplySizeNeverSendsZeroCopy) {
  RunningEcho echo(zc_options(1 << 20));  // larger than output_bytes: no send can reach it
  ASSERT_TRUE(echo.ok()) << echo.error();
  const int fd = connect_to(echo.port());
  const std::string msg = pattern(1 << 20, 6);
  EXPECT_TRUE(echo_round_trip(fd, msg) == msg);
  close(fd);
  EXPECT_EQ(settle(echo).zc_sends, 0u);
}

TEST(UringSendZc, KernelRefusalFallsBackToPlainSendsForGood) {
  ServerOptions o = zc_options(1024);
  o.send_zc_extra_flags = 1u << 15;  // a zc flag no kernel knows: the request fails with EINVAL
  RunningEcho echo(o);
  ASSERT_TRUE(echo.ok()) << echo.error();
  const int fd = connect_to(echo.port());
  ASSERT_GE(fd, 0);
  for (int round = 0; round < 3; ++round) {
    const std::string msg = pattern(1 << 20, 40 + round);
    ASSERT_TRUE(echo_round_trip(fd, msg) == msg) << round;
  }
  close(fd);
  const ServerStats s = settle(echo);
  EXPECT_EQ(s.zc_fallbacks, 1u);   // once, then never again
  EXPECT_EQ(s.zc_sends, 2u);       // with the usage report, then without it: both refused
  EXPECT_EQ(s.zc_outstanding, 0u);  // a refused request may still be notified (the kernel decides)
  EXPECT_LE(s.zc_notifications, s.zc_sends);
  EXPECT_EQ(s.bytes_out, 3u << 20);
}

TEST(UringSendZc, ClosingWithNotificationsOutstandingIsClean) {
  ServerOptions o = zc_options(1024);
  o.max_connections = 8;
  o.spare_output_buffers = 4;
  RunningEcho echo(o);
  ASSERT_TRUE(echo.ok()) << echo.error();
  // Each client sends far more than it reads, then closes (half of them with a reset): the server is
  // mid-send or waiting for notifications on most of them.
  constexpr std::uint64_t kRounds = 40;
  for (std::uint64_t round = 0; round < kRounds; ++round) {
    const int fd = connect_to(echo.port());
    ASSERT_GE(fd, 0);
    const std::string msg = pattern(512 * 1024, static_cast<std::size_t>(round));
    std::size_t sent = 0;
    const auto until = std::chrono::steady_clock::now() + 20ms;
    while (sent < msg.size() && std::chrono::steady_clock::now() < until) {
      const ssize_t w = send(fd, msg.data() + sent, msg.size() - sent, MSG_NOSIGNAL | MSG_DONTWAIT);
      if (w > 0) sent += static_cast<std::size_t>(w);
      else std::this_thread::sleep_for(100us);
    }
    if (round % 2 == 0) {
      linger lg{1, 0};  // close with RST
      setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
    }
    close(fd);
  }
  const ServerStats s = settle(echo, kRounds);
  EXPECT_EQ(s.active, 0u);
  EXPECT_EQ(s.zc_outstanding, 0u);
  EXPECT_GT(s.zc_sends, 0u);
  EXPECT_LE(s.zc_notifications, s.zc_sends);  // a cancelled send may be refused before it was notified
  // A connection was refused when all 4 spare buffers were parked behind notifications, or when all 8
  // slots were still held by earlier clients the loop had not finished closing; none went missing.
  const std::uint64_t refused = s.rejected;
  EXPECT_EQ(s.accepted + refused, kRounds);
  std::printf("refused (spare buffers parked or slots full): %llu\n", static_cast<unsigned long long>(refused));
  // Every slot and output buffer came back: the server still serves max_connections clients exactly.
  std::vector<int> fds;
  for (std::uint32_t i = 0; i < o.max_connections; ++i) {
    fds.push_back(connect_to(echo.port()));
    ASSERT_GE(fds.back(), 0);
  }
  for (std::size_t i = 0; i < fds.size(); ++i) {
    const std::string msg = pattern(200'000, 900 + i);
    EXPECT_TRUE(echo_round_trip(fds[i], msg) == msg) << i;
  }
  for (int fd : fds) close(fd);
  const ServerStats end = settle(echo);
  EXPECT_EQ(end.accepted, s.accepted + o.max_connections);
  EXPECT_EQ(end.closed, end.accepted);
  EXPECT_EQ(end.rejected, refused);
}

TEST(UringSendZc, StoppingWithNotificationsOutstandingIsClean) {
  // Clients that never read: the server's zero-copy sends sit in full sockets when it stops.
  for (int round = 0; round < 5; ++round) {
    RunningEcho echo(zc_options(1024));
    ASSERT_TRUE(echo.ok()) << echo.error();
    std::vector<int> fds;
    for (int c = 0; c < 4; ++c) {
      const int fd = connect_to(echo.port());
      ASSERT_GE(fd, 0);
      const std::string msg = pattern(1 << 20, static_cast<std::size_t>(c));
      std::size_t sent = 0;
      const auto until = std::chrono::steady_clock::now() + 30ms;
      while (sent < msg.size() && std::chrono::steady_clock::now() < until) {
        const ssize_t w = send(fd, msg.data() + sent, msg.size() - sent, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (w > 0) sent += static_cast<std::size_t>(w);
        else std::this_thread::sleep_for(100us);
      }
      fds.push_back(fd);
    }
    // The loop may start late on a loaded machine: wait for the replies that cannot be read.
    const auto deadline = std::chrono::steady_clock::now() + 5s;
    while (echo.stats().zc_outstanding == 0 && std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(5ms);
    EXPECT_GT(echo.stats().zc_outstanding, 0u);  // on loopback a notification waits for the reader
    echo.stop();  // notifications may still be outstanding here
    for (int fd : fds) close(fd);
  }
}

}  // namespace
}  // namespace hypergate::uring
