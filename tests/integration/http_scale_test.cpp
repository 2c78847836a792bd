// HTTP at scale against the real `hypergate` on configs/http.toml: 5,000 concurrent keep-alive
// connections held open on the catch-all, and the gateway's resident memory flat (within 5%) between
// 50k and 500k requests on each endpoint. Clients are raw pipelined sockets so that request counts
// are exact; nothing here is timed.
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cstdint>
#include <fstream>
#include <string>
#include <vector>

#include "http_gateway.hpp"
#include "loopback.hpp"

namespace {

using namespace hypergate::test;

constexpr std::string_view kVrypt = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nVrypt";

/// VmRSS of `pid` in KiB (0 if unreadable).
std::uint64_t rss_kib(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("VmRSS:", 0) == 0) return std::stoull(line.substr(6));
  return 0;
}

bool raise_nofile(rlim_t want) {
  rlimit rl{};
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0) return false;
  rl.rlim_cur = std::min(want, rl.rlim_max);
  return setrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur >= want;
}

/// Keep-alive connections that pipeline `depth` requests per round; counts answers exactly.
class PipelinedClient {
 public:
  PipelinedClient(std::uint16_t port, int connections, int depth, std::string request)
      : depth_(depth) {
    for (int i = 0; i < depth; ++i) batch_ += request;
    for (int i = 0; i < connections; ++i) fds_.push_back(connect_to(port));
  }
  ~PipelinedClient() {
    for (int fd : fds_)
      if (fd >= 0) close(fd);
  }
  [[nodiscard]] bool connected() const {
    for (int fd : fds_)
      if (fd < 0) return false;
    return true;
  }
  /// Catch-all: every answer is kVrypt. Returns the answers received (stops at the first mismatch).
  std::uint64_t run_vrypt(std::uint64_t total) {
    std::uint64_t done = 0;
    const std::string expected = [&] {
      std::string e;
      for (int i = 0; i < depth_; ++i) e += kVrypt;
      return e;
    }();
    while (done < total) {
      for (int fd : fds_)
        if (!send_all(fd, batch_)) return done;
      for (int fd : fds_) {
        if (recv_exactly(fd, expected.size()) != expected) return done;
        done += static_cast<std::uint64_t>(depth_);
      }
    }
    return done;
  }
  /// /fire: answers vary in length; each body ends in " ns" (the header says "Ns"), so the answers
  /// are counted by that ending in the byte stream, across reads.
  std::uint64_t run_fire(std::uint64_t total) {
    std::uint64_t done = 0;
    while (done < total) {
      for (int fd : fds_)
        if (!send_all(fd, batch_)) return done;
      for (int fd : fds_) {
        int got = 0;
        char tail[2] = {0, 0};
        while (got < depth_) {
          char buf[8192];
          const ssize_t n = recv(fd, buf, sizeof buf, 0);
          if (n <= 0) return done;
          for (ssize_t i = 0; i < n; ++i) {
            if (tail[0] == ' ' && tail[1] == 'n' && buf[i] == 's') ++got;
            tail[0] = tail[1];
            tail[1] = buf[i];
          }
        }
        if (got != depth_) return done;  // more answers than requests: impossible unless broken
        done += static_cast<std::uint64_t>(depth_);
      }
    }
    return done;
  }

 private:
  int depth_;
  std::string batch_;
  std::vector<int> fds_;
};

TEST(HttpScale, FiveThousandKeepAliveConnectionsAreHeldAndAnswered) {
  constexpr int kConnections = 5000;
  ASSERT_TRUE(raise_nofile(kConnections + 1000)) << "RLIMIT_NOFILE too low for this test";
  Gateway gw({"--set", "source.catchall.max_connections=6000"});  // the gateway inherits the raised limit
  ASSERT_TRUE(gw.start()) << gw.log();
  std::vector<int> fds;
  fds.reserve(kConnections);
  for (int i = 0; i < kConnections; ++i) {
    const int fd = connect_to(gw.catchall_port());
    ASSERT_GE(fd, 0) << "connection " << i << ": " << gw.log();
    fds.push_back(fd);
  }
  // Two rounds over every connection: the second proves all 5,000 stayed open (keep-alive).
  const std::string req = "GET /x HTTP/1.1\r\nHost: t\r\n\r\n";
  for (int round = 0; round < 2; ++round) {
    for (int fd : fds) ASSERT_TRUE(send_all(fd, req));
    int answered = 0;
    for (int fd : fds) answered += recv_exactly(fd, kVrypt.size()) == kVrypt;
    EXPECT_EQ(answered, kConnections) << "round " << round;
  }
  for (int fd : fds) close(fd);
}

TEST(HttpScale, ResidentMemoryStaysFlatFrom50kTo500kRequests) {
  Gateway gw;
  ASSERT_TRUE(gw.start()) << gw.log();
  // Depth 8: 50k requests are over 6k receives per listener, more than its 2,048 provided buffers, so
  // every buffer page the transport cycles through is resident before the first sample (warm-up, not
  // growth).
  PipelinedClient catchall(gw.catchall_port(), 16, 8, "GET /x HTTP/1.1\r\nHost: t\r\n\r\n");
  PipelinedClient fire(gw.port(), 16, 16,
                       "POST /fire HTTP/1.1\r\nHost: t\r\nContent-Length: 16\r\n\r\nbody-of-sixteen!");
  ASSERT_TRUE(catchall.connected() && fire.connected()) << gw.log();
  // Warm-up to 50k on each endpoint, sample; then to 500k, sample again.
  ASSERT_GE(catchall.run_vrypt(50'000), 50'000u) << gw.log();
  ASSERT_GE(fire.run_fire(50'000), 50'000u) << gw.log();
  const std::uint64_t rss_50k = rss_kib(gw.pid());
  ASSERT_GT(rss_50k, 0u);
  ASSERT_GE(catchall.run_vrypt(450'000), 450'000u);
  ASSERT_GE(fire.run_fire(450'000), 450'000u);
  const std::uint64_t rss_500k = rss_kib(gw.pid());
  EXPECT_LE(rss_500k, rss_50k + rss_50k / 20) << "VmRSS " << rss_50k << " KiB -> " << rss_500k << " KiB";
  std::fprintf(stderr, "VmRSS after 50k: %llu KiB, after 500k: %llu KiB\n",
               static_cast<unsigned long long>(rss_50k), static_cast<unsigned long long>(rss_500k));
}

}  // namespace
