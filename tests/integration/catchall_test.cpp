// `http.catchall` end to end: the real `hypergate` binary with a config written to a temp dir, driven
// by real curl and wrk, raw sockets (pipelining, slowloris) and a UDP socket standing in for StatsD.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <fstream>
#include <optional>
#include <regex>
#include <string>
#include <thread>

#include "gateway_process.hpp"
#include "loopback.hpp"

namespace {

using namespace std::chrono_literals;
using namespace hypergate::test;

/// The gateway as a child process, with its own temp dir and config.
class Gateway {
 public:
  explicit Gateway(std::string extra = {})
      : extra_(std::move(extra)),
        port_(free_port(SOCK_STREAM)),
        statsd_port_(free_port(SOCK_DGRAM)),
        config_(dir_.path() + "/catchall.toml") {
    // admin on an ephemeral port: tests run in parallel and must not compete for 9901.
    std::ofstream(config_) << "[gateway]\nworkers = 1\n\n[admin]\nlisten = \"127.0.0.1:0\"\n\n[source.catchall]\ntype = \"http.catchall\"\n"
                           << "listen = \"127.0.0.1:" << port_ << "\"\n"
                           << "statsd = \"127.0.0.1:" << statsd_port_ << "\"\n"
                           << "statsd_prefix = \"hgtest\"\nstatsd_interval = \"200ms\"\n"
                           << "header_timeout = \"2s\"\nmax_header_bytes = 8192\nmax_body_bytes = 65536\n"
                           << extra_ << "\n[sink.discard]\ntype = \"null\"\n";
  }

  bool start() {
    process_.emplace(std::vector<std::string>{"run", "--config", config_});
    // Ready when the gateway says so (its sources, hence the listener, started) and accepts. A
    // connect alone could reach the listener of a predecessor killed with -9, which the kernel tears
    // down asynchronously (its ring's in-flight accept holds it for a few milliseconds).
    return process_->wait_for("hypergate: running") && wait_until_accepting(port_);
  }

  /// SIGKILL and reap; what it printed stays in log().
  void kill_now() {
    if (process_) earlier_output_ += process_->output_now();
    process_.reset();
  }

  /// What every gateway run of this object printed so far.
  std::string log() { return earlier_output_ + (process_ ? process_->output_now() : std::string()); }
  std::string url(const std::string& path = "/") const { return "http://127.0.0.1:" + std::to_string(port_) + path; }
  std::uint16_t port() const { return port_; }
  std::uint16_t statsd_port() const { return statsd_port_; }
  const std::string& dir() const { return dir_.path(); }

 private:
  TempDir dir_{"hg_catchall"};  // declared first: removed after the process is gone
  std::string extra_;
  std::uint16_t port_;
  std::uint16_t statsd_port_;
  std::string config_;
  std::string earlier_output_;
  std::optional<GatewayProcess> process_;
};

std::string curl(const std::string& args) { return sh("curl -s -m 10 " + args + " 2>&1"); }

class Catchall : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(gw_.start()) << "gateway did not start: " << gw_.log(); }
  Gateway gw_;
};

TEST_F(Catchall, EveryMethodAndPathGetsVrypt) {
  EXPECT_EQ(curl(gw_.url()), "Vrypt");
  EXPECT_EQ(curl("-X POST -d hello " + gw_.url("/submit")), "Vrypt");
  EXPECT_EQ(curl("-X PUT -d x " + gw_.url("/x")), "Vrypt");
  EXPECT_EQ(curl("-X DELETE " + gw_.url("/a/b?c=d")), "Vrypt");
  EXPECT_EQ(curl("-X PURGE " + gw_.url("/custom-method")), "Vrypt");
  const std::string headers = curl("-i " + gw_.url("/any"));
  EXPECT_NE(headers.find("HTTP/1.1 200 OK\r\n"), std::string::npos) << headers;
  EXPECT_NE(headers.find("Content-Type: text/plain\r\n"), std::string::npos) << headers;
  EXPECT_NE(headers.find("Content-Length: 5\r\n"), std::string::npos) << headers;
}

TEST_F(Catchall, HeadHasHeadersButNoBody) {
  const std::string out = curl("-I " + gw_.url("/h"));
  EXPECT_EQ(out.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << out;
  EXPECT_NE(out.find("Content-Length: 5"), std::string::npos);
  EXPECT_EQ(out.find("Vrypt"), std::string::npos);
}

TEST_F(Catchall, ChunkedAndExpectContinueBodies) {
  EXPECT_EQ(curl("-H 'Transfer-Encoding: chunked' -d 'chunked body' " + gw_.url("/c")), "Vrypt");
  const std::string file = gw_.dir() + "/body.bin";
  std::ofstream(file) << std::string(20000, 'b');
  // curl waits up to 1 s for `100 Continue` before sending; the server sends it at once.
  const std::string out = curl("-v -H 'Expect: 100-continue' --data-binary @" + file + " " + gw_.url("/up"));
  EXPECT_NE(out.find("HTTP/1.1 100 Continue"), std::string::npos) << out;
  EXPECT_NE(out.find("Vrypt"), std::string::npos) << out;
}

TEST_F(Catchall, LimitsAnswer431And413) {
  const std::string big(10000, 'h');
  EXPECT_EQ(curl("-o /dev/null -w '%{http_code}' -H 'X-Big: " + big + "' " + gw_.url()), "431");
  EXPECT_EQ(curl("-o /dev/null -w '%{http_code}' -X POST -H 'Content-Length: 999999999' " + gw_.url()), "413");
  EXPECT_EQ(curl(gw_.url()), "Vrypt");  // and it keeps serving
}

TEST_F(Catchall, Http10AndConnectionClose) {
  const std::string v10 = curl("-0 -i " + gw_.url());
  EXPECT_NE(v10.find("Connection: close"), std::string::npos) << v10;
  EXPECT_NE(v10.find("Vrypt"), std::string::npos);
  const std::string ka = curl("-0 -i -H 'Connection: keep-alive' " + gw_.url());
  EXPECT_NE(ka.find("Connection: keep-alive"), std::string::npos) << ka;
  // Two URLs on one curl: the second reuses the kept-alive connection.
  const std::string two = curl("-v " + gw_.url("/1") + " " + gw_.url("/2"));
  EXPECT_NE(two.find("Re-using existing connection"), std::string::npos) << two;
}

TEST_F(Catchall, PipelinedRequestsAnsweredInOrder) {
  const int fd = connect_to(gw_.port());
  ASSERT_GE(fd, 0);
  const std::string reqs = "GET /1 HTTP/1.1\r\nHost: a\r\n\r\nHEAD /2 HTTP/1.1\r\nHost: a\r\n\r\n"
                           "GET /3 HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n";
  ASSERT_EQ(send(fd, reqs.data(), reqs.size(), MSG_NOSIGNAL), static_cast<ssize_t>(reqs.size()));
  std::string got;
  char buf[4096];
  for (;;) {
    const ssize_t r = recv(fd, buf, sizeof(buf), 0);
    if (r <= 0) break;
    got.append(buf, static_cast<std::size_t>(r));
  }
  close(fd);
  const std::string ok = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n";
  EXPECT_EQ(got, ok + "\r\nVrypt" + ok + "\r\n" + ok + "Connection: close\r\n\r\nVrypt");  // GET, HEAD, GET+close
}

TEST_F(Catchall, MalformedRequestGets400AndClose) {
  const int fd = connect_to(gw_.port());
  ASSERT_GE(fd, 0);
  const std::string bad = "GET / HTTP/1.1\r\nBad Header\r\n\r\nGET / HTTP/1.1\r\n\r\n";
  send(fd, bad.data(), bad.size(), MSG_NOSIGNAL);
  std::string got;
  char buf[1024];
  for (;;) {
    const ssize_t r = recv(fd, buf, sizeof(buf), 0);
    if (r <= 0) break;
    got.append(buf, static_cast<std::size_t>(r));
  }
  close(fd);
  EXPECT_EQ(got.rfind("HTTP/1.1 400 Bad Request\r\n", 0), 0u) << got;
  EXPECT_NE(got.find("Connection: close"), std::string::npos);
  EXPECT_EQ(got.find("Vrypt"), std::string::npos);  // the request after the bad one is not answered
}

TEST_F(Catchall, SlowlorisIsTimedOutWhileOthersAreServed) {
  const int slow = connect_to(gw_.port());
  ASSERT_GE(slow, 0);
  const std::string header = "GET / HTTP/1.1\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
  bool closed = false;
  const auto start = std::chrono::steady_clock::now();
  for (std::size_t i = 0; i < header.size() && !closed; ++i) {  // one byte per second, never finished
    if (send(slow, &header[i], 1, MSG_NOSIGNAL) != 1) {
      closed = true;
      break;
    }
    EXPECT_EQ(curl(gw_.url("/other")), "Vrypt");  // another client is served meanwhile
    pollfd p{slow, POLLIN, 0};
    if (poll(&p, 1, 1000) > 0) {
      char c;
      closed = recv(slow, &c, 1, MSG_DONTWAIT) <= 0;
    }
  }
  close(slow);
  EXPECT_TRUE(closed);
  EXPECT_LT(std::chrono::steady_clock::now() - start, 10s);  // header_timeout = 2 s (+ tick)
}

TEST_F(Catchall, StatsdGaugeIsPushed) {
  const int udp = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(gw_.statsd_port());
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(udp, reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
  timeval tv{1, 0};
  setsockopt(udp, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  const std::regex gauge(R"(hgtest\.rps:(\d+)\|g)");
  bool nonzero = false;
  bool any = false;
  for (int i = 0; i < 20 && !nonzero; ++i) {
    for (int k = 0; k < 20; ++k) (void)curl(gw_.url());
    char buf[512];
    const ssize_t r = recv(udp, buf, sizeof(buf), 0);
    if (r <= 0) continue;
    const std::string line(buf, static_cast<std::size_t>(r));
    std::smatch m;
    ASSERT_TRUE(std::regex_match(line, m, gauge)) << line;
    any = true;
    nonzero = std::stoull(m[1].str()) > 0;
  }
  close(udp);
  EXPECT_TRUE(any);
  EXPECT_TRUE(nonzero);
}

TEST_F(Catchall, WrkBoundedLoadHasNoErrors) {
  if (sh("command -v wrk").empty()) GTEST_SKIP() << "wrk not installed";
  const std::string out = sh("wrk -d2s -c50 -t1 " + gw_.url() + " 2>&1");
  EXPECT_EQ(out.find("Socket errors"), std::string::npos) << out;
  EXPECT_EQ(out.find("Non-2xx"), std::string::npos) << out;
  std::smatch m;
  ASSERT_TRUE(std::regex_search(out, m, std::regex(R"((\d+) requests in)"))) << out;
  EXPECT_GT(std::stoull(m[1].str()), 1000u) << out;
}

TEST_F(Catchall, KillNineThenImmediateRestartRebindsThePort) {
  // Leave connections behind (some in TIME_WAIT on the server side after close).
  for (int i = 0; i < 5; ++i) EXPECT_EQ(curl("-H 'Connection: close' " + gw_.url()), "Vrypt");
  const int held = connect_to(gw_.port());  // and one still open at the kill
  gw_.kill_now();
  ASSERT_TRUE(gw_.start()) << gw_.log();  // bind succeeded at once
  std::string got;
  for (int i = 0; i < 30 && got != "Vrypt"; ++i) {  // see Gateway::start() on the dying listener
    got = curl(gw_.url());
    if (got != "Vrypt") std::this_thread::sleep_for(100ms);
  }
  EXPECT_EQ(got, "Vrypt") << gw_.log();
  for (int i = 0; i < 10; ++i) EXPECT_EQ(curl(gw_.url()), "Vrypt");  // then steadily
  if (held >= 0) close(held);
}

}  // namespace
