// `http.fire` end to end: the real `hypergate` binary on configs/http.toml (ports moved to free ones
// with --set), driven by real curl and raw sockets. COLLISION is forced deterministically with a test
// plugin sink that never accepts (fire_stuck_sink.cpp) behind a 2-slot ring with the drop policy.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <map>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include "hypergate/core/hash.hpp"
#include "http_gateway.hpp"
#include "loopback.hpp"

namespace {

using namespace std::chrono_literals;
using namespace hypergate::test;

std::string curl(const std::string& args) { return sh("curl -s -m 10 " + args + " 2>&1"); }

struct Response {
  int status = 0;
  std::map<std::string, std::string> headers;  // names lower-cased
  std::string body;
};

/// Reads one response from `fd`; `buf` keeps bytes of the responses behind it (pipelining).
/// `head` = the request was HEAD (no body whatever Content-Length says). status 0: nothing came.
Response read_response(int fd, std::string& buf, bool head = false) {
  Response r;
  auto fill = [&] {
    char tmp[4096];
    const ssize_t n = recv(fd, tmp, sizeof tmp, 0);
    if (n <= 0) return false;
    buf.append(tmp, static_cast<std::size_t>(n));
    return true;
  };
  std::size_t end = 0;
  while ((end = buf.find("\r\n\r\n")) == std::string::npos)
    if (!fill()) return r;
  const std::string head_text = buf.substr(0, end);
  buf.erase(0, end + 4);
  std::size_t pos = head_text.find("\r\n");
  const std::string status_line = head_text.substr(0, pos);
  if (status_line.size() < 12) return r;
  r.status = std::stoi(status_line.substr(9, 3));
  while (pos != std::string::npos && pos < head_text.size()) {
    const std::size_t next = head_text.find("\r\n", pos + 2);
    const std::string line = head_text.substr(pos + 2, next == std::string::npos ? std::string::npos : next - pos - 2);
    const std::size_t colon = line.find(':');
    if (colon != std::string::npos) {
      std::string name = line.substr(0, colon);
      for (char& ch : name) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
      r.headers[name] = line.substr(line.find_first_not_of(' ', colon + 1));
    }
    pos = next;
  }
  const std::size_t len = head ? 0 : std::stoul(r.headers.count("content-length") ? r.headers["content-length"] : "0");
  while (buf.size() < len)
    if (!fill()) break;
  r.body = buf.substr(0, len);
  buf.erase(0, std::min(len, buf.size()));
  return r;
}

std::string post_fire(const std::string& body, const std::string& extra_headers = "", bool close = false) {
  return "POST /fire HTTP/1.1\r\nHost: t\r\nContent-Length: " + std::to_string(body.size()) + "\r\n" + extra_headers +
         (close ? "Connection: close\r\n" : "") + "\r\n" + body;
}

/// Checks the V8-32 answer shape; returns the status word (PROCESSED / COLLISION) or "" on mismatch.
std::string verdict_of(const Response& r) {
  static const std::regex body_re(R"(V8-32 Engine: (PROCESSED|COLLISION) \| Time: (\d+) ns)");
  std::smatch m;
  if (r.status != 200 || !std::regex_match(r.body, m, body_re)) {
    ADD_FAILURE() << "status " << r.status << " body '" << r.body << "'";
    return "";
  }
  const auto st = r.headers.find("x-hyper-status");
  const auto lat = r.headers.find("x-latency-ns");
  EXPECT_TRUE(st != r.headers.end() && st->second == m[1].str()) << r.body;
  EXPECT_TRUE(lat != r.headers.end() && lat->second == m[2].str()) << r.body;  // same number in both
  return m[1].str();
}

/// "lane  N (...): in X ..." lines of the exit report -> lane -> in.
std::map<unsigned, std::uint64_t> lanes_in(const std::string& log) {
  std::map<unsigned, std::uint64_t> out;
  static const std::regex re(R"(lane\s+(\d+) \(worker \d+, \w+\): in (\d+))");
  for (auto it = std::sregex_iterator(log.begin(), log.end(), re); it != std::sregex_iterator(); ++it)
    out[static_cast<unsigned>(std::stoul((*it)[1]))] = std::stoull((*it)[2]);
  return out;
}

/// The fire source's own counters from its exit line.
std::map<std::string, std::uint64_t> fire_counters(const std::string& log) {
  std::map<std::string, std::uint64_t> out;
  static const std::regex line_re(R"(http\.fire 'fire': (.*))");
  std::smatch m;
  if (!std::regex_search(log, m, line_re)) return out;
  const std::string text = m[1].str();
  static const std::regex kv(R"((\w+) (\d+))");
  for (auto it = std::sregex_iterator(text.begin(), text.end(), kv); it != std::sregex_iterator(); ++it)
    out[(*it)[1]] = std::stoull((*it)[2]);
  return out;
}

class Fire : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(gw_.start()) << "gateway did not start: " << gw_.log(); }
  Gateway gw_;
};

TEST_F(Fire, PostFireAnswersProcessedWithTheInEngineTime) {
  const std::string out = curl("-i -X POST -d hello " + gw_.url());
  EXPECT_EQ(out.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << out;
  const int fd = connect_to(gw_.port());
  ASSERT_GE(fd, 0);
  std::string buf;
  ASSERT_TRUE(send_all(fd, post_fire("hello")));
  const Response r = read_response(fd, buf);
  EXPECT_EQ(verdict_of(r), "PROCESSED");
  EXPECT_EQ(r.headers.at("content-type"), "text/plain");
  EXPECT_EQ(r.headers.at("content-length"), std::to_string(r.body.size()));
  EXPECT_GT(std::stoull(r.headers.at("x-latency-ns")), 0u);
  // An empty body is a message too.
  ASSERT_TRUE(send_all(fd, post_fire("")));
  EXPECT_EQ(verdict_of(read_response(fd, buf)), "PROCESSED");
  close(fd);
}

TEST_F(Fire, XHyperKeyRoutesElseTheBodyIsTheKey) {
  // 3 bodies under one key, 2 bodies without a key; the exit report's lane counters must match the
  // lanes those keys hash to (lanes = 32 in configs/http.toml).
  std::map<unsigned, std::uint64_t> expected;
  const auto lane = [](std::string_view key) { return static_cast<unsigned>(hypergate::hash_bytes(key.data(), key.size()) & 31); };
  for (const char* body : {"b1", "b2", "b3"}) {
    EXPECT_NE(curl("-H 'X-Hyper-Key: AAPL' -d " + std::string(body) + " " + gw_.url()).find("PROCESSED"),
              std::string::npos);
    ++expected[lane("AAPL")];
  }
  for (const char* body : {"alpha", "omega"}) {
    EXPECT_NE(curl("-d " + std::string(body) + " " + gw_.url()).find("PROCESSED"), std::string::npos);
    ++expected[lane(body)];
  }
  EXPECT_EQ(lanes_in(gw_.stop_and_log()), expected) << gw_.log();
}

TEST_F(Fire, EverythingElseIs404AndTheConnectionKeepsWorking) {
  EXPECT_EQ(curl("-o /dev/null -w '%{http_code}' " + gw_.url()), "404");                     // GET /fire
  EXPECT_EQ(curl("-o /dev/null -w '%{http_code}' -X PUT -d x " + gw_.url()), "404");         // PUT /fire
  EXPECT_EQ(curl("-o /dev/null -w '%{http_code}' -X POST -d x " + gw_.url("/other")), "404");
  EXPECT_EQ(curl("-o /dev/null -w '%{http_code}' -I " + gw_.url()), "404");                  // HEAD /fire
  const int fd = connect_to(gw_.port());
  ASSERT_GE(fd, 0);
  std::string buf;
  ASSERT_TRUE(send_all(fd, "GET /fire HTTP/1.1\r\nHost: t\r\n\r\n"));
  Response r = read_response(fd, buf);
  EXPECT_EQ(r.status, 404);
  EXPECT_EQ(r.body, "Not Found");
  ASSERT_TRUE(send_all(fd, "HEAD /fire HTTP/1.1\r\nHost: t\r\n\r\n"));
  r = read_response(fd, buf, true);
  EXPECT_EQ(r.status, 404);
  ASSERT_TRUE(send_all(fd, "POST /fired HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\n\r\nxy"));
  EXPECT_EQ(read_response(fd, buf).status, 404);
  ASSERT_TRUE(send_all(fd, post_fire("after the 404s")));
  EXPECT_EQ(verdict_of(read_response(fd, buf)), "PROCESSED");
  EXPECT_TRUE(buf.empty());  // nothing extra was sent (the HEAD answer had no body)
  close(fd);
}

TEST_F(Fire, ChunkedAndExpectContinueBodies) {
  EXPECT_NE(curl("-H 'Transfer-Encoding: chunked' -d 'chunked body' " + gw_.url()).find("V8-32 Engine: PROCESSED"),
            std::string::npos);
  const std::string file = gw_.dir() + "/body.bin";
  std::ofstream(file) << std::string(100, 'b');
  const std::string out = curl("-v -H 'Expect: 100-continue' --data-binary @" + file + " " + gw_.url());
  EXPECT_NE(out.find("HTTP/1.1 100 Continue"), std::string::npos) << out;
  EXPECT_NE(out.find("V8-32 Engine: PROCESSED"), std::string::npos) << out;
  // A raw chunked request split in two writes, then a normal one on the same connection.
  const int fd = connect_to(gw_.port());
  ASSERT_GE(fd, 0);
  std::string buf;
  ASSERT_TRUE(send_all(fd, "POST /fire HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel"));
  std::this_thread::sleep_for(20ms);
  ASSERT_TRUE(send_all(fd, "lo\r\n0\r\n\r\n"));
  EXPECT_EQ(verdict_of(read_response(fd, buf)), "PROCESSED");
  ASSERT_TRUE(send_all(fd, post_fire("next")));
  EXPECT_EQ(verdict_of(read_response(fd, buf)), "PROCESSED");
  close(fd);
}

TEST_F(Fire, PipelinedRequestsAreAnsweredInOrder) {
  // 40 requests in one write: POST /fire and 404s interleaved; a 404 must never overtake the verdict
  // of the POST before it. The last one closes the connection.
  std::string batch;
  std::vector<int> expected;
  for (int i = 0; i < 40; ++i) {
    const bool last = i == 39;
    if (i % 3 == 1) {
      batch += std::string("GET /nope HTTP/1.1\r\nHost: t\r\n") + (last ? "Connection: close\r\n" : "") + "\r\n";
      expected.push_back(404);
    } else {
      batch += post_fire("m" + std::to_string(i), "X-Hyper-Key: k" + std::to_string(i % 4) + "\r\n", last);
      expected.push_back(200);
    }
  }
  const int fd = connect_to(gw_.port());
  ASSERT_GE(fd, 0);
  ASSERT_TRUE(send_all(fd, batch));
  std::string buf;
  for (int i = 0; i < 40; ++i) {
    const Response r = read_response(fd, buf);
    ASSERT_EQ(r.status, expected[i]) << "response " << i;
    if (expected[i] == 200) {
      EXPECT_EQ(verdict_of(r), "PROCESSED");
    }
  }
  char c;
  EXPECT_EQ(recv(fd, &c, 1, 0), 0);  // Connection: close honoured after the last answer
  close(fd);
}

TEST_F(Fire, LimitsAnswer431And413AndServingGoesOn) {
  const std::string big(20000, 'h');
  EXPECT_EQ(curl("-o /dev/null -w '%{http_code}' -H 'X-Big: " + big + "' -d x " + gw_.url()), "431");
  EXPECT_EQ(curl("-o /dev/null -w '%{http_code}' -X POST -H 'Content-Length: 999999999' " + gw_.url()), "413");
  // Within the HTTP limit but larger than a valve slot (256 bytes): the engine rejects it.
  const std::string file = gw_.dir() + "/big.bin";
  std::ofstream(file) << std::string(4000, 'z');
  const std::string out = curl("-i --data-binary @" + file + " " + gw_.url());
  EXPECT_EQ(out.rfind("HTTP/1.1 413", 0), 0u) << out;
  EXPECT_NE(out.find("X-Hyper-Status: REJECTED"), std::string::npos) << out;
  EXPECT_NE(curl("-d ok " + gw_.url()).find("PROCESSED"), std::string::npos);
}

TEST_F(Fire, KillDashNineThenImmediateRestartRebindsThePort) {
  EXPECT_NE(curl("-d one " + gw_.url()).find("PROCESSED"), std::string::npos);
  gw_.kill_now();
  ASSERT_TRUE(gw_.start()) << gw_.log();
  EXPECT_NE(curl("-d two " + gw_.url()).find("PROCESSED"), std::string::npos);
}

TEST(FireSmallBurst, ConnectionsThatFindTheBurstFullAreServedLater) {
  // burst = 1: one request per poll; every other connection's request waits in the transport and is
  // redelivered. 8 connections x 10 pipelined POSTs (plus a 404 each) must all be answered, in order.
  Gateway gw({"--set", "source.fire.burst=1"});
  ASSERT_TRUE(gw.start()) << gw.log();
  std::vector<int> fds;
  for (int c = 0; c < 8; ++c) {
    const int fd = connect_to(gw.port());
    ASSERT_GE(fd, 0);
    fds.push_back(fd);
    std::string batch;
    for (int i = 0; i < 10; ++i) batch += post_fire("c" + std::to_string(c) + "m" + std::to_string(i));
    batch += "GET /x HTTP/1.1\r\nHost: t\r\n\r\n";
    ASSERT_TRUE(send_all(fd, batch));
  }
  for (int fd : fds) {
    std::string buf;
    for (int i = 0; i < 10; ++i) EXPECT_EQ(verdict_of(read_response(fd, buf)), "PROCESSED") << i;
    EXPECT_EQ(read_response(fd, buf).status, 404);
    close(fd);
  }
  EXPECT_EQ(fire_counters(gw.stop_and_log())["processed"], 80u) << gw.log();
}

TEST(FireIdle, AWorkerInALongBackoffSleepAnswersAtOnce) {
  // A minute-long idle sleep: a request that waited for the sleep to end would miss curl's 10 s limit.
  // The worker sleeps on the fire source's io_uring ring too (Source::wake_fd), so the completion of
  // the request's receive wakes it.
  Gateway gw({"--set", "gateway.idle=backoff", "--set", "gateway.idle_sleep=60s"});
  ASSERT_TRUE(gw.start()) << gw.log();
  for (int round = 0; round < 3; ++round) {
    std::this_thread::sleep_for(300ms);  // idle long enough to be asleep
    const std::string out = curl("-d round" + std::to_string(round) + " " + gw.url());
    EXPECT_NE(out.find("V8-32 Engine: PROCESSED"), std::string::npos) << "round " << round << ": " << out;
  }
  EXPECT_EQ(fire_counters(gw.stop_and_log())["processed"], 3u) << gw.log();
}

TEST(FireCollision, AFullLaneAnswersCollisionAndTheCountersAgree) {
  Gateway gw({"--plugin", HG_STUCK_SINK_PLUGIN, "--set", "sink.discard.type=test.stuck", "--set", "valves.lanes=1",
              "--set", "valves.capacity=2", "--set", "valves.policy=drop"});
  ASSERT_TRUE(gw.start()) << gw.log();
  constexpr int kRequests = 64;
  std::string batch;
  for (int i = 0; i < kRequests; ++i) batch += post_fire("c" + std::to_string(i));
  const int fd = connect_to(gw.port());
  ASSERT_GE(fd, 0);
  ASSERT_TRUE(send_all(fd, batch));
  std::string buf;
  int processed = 0, collisions = 0;
  for (int i = 0; i < kRequests; ++i) {
    const std::string v = verdict_of(read_response(fd, buf));
    processed += v == "PROCESSED";
    collisions += v == "COLLISION";
  }
  close(fd);
  EXPECT_EQ(processed + collisions, kRequests);
  // The sink takes nothing: the ring (2) and the consumer's batch take a few, every later push collides.
  EXPECT_GE(processed, 1);
  EXPECT_LE(processed, 8);
  const std::string log = gw.stop_and_log();
  auto fc = fire_counters(log);
  EXPECT_EQ(fc["requests"], static_cast<std::uint64_t>(kRequests)) << log;
  EXPECT_EQ(fc["processed"], static_cast<std::uint64_t>(processed)) << log;
  EXPECT_EQ(fc["collisions"], static_cast<std::uint64_t>(collisions)) << log;
  std::smatch m;
  ASSERT_TRUE(std::regex_search(log, m, std::regex(R"(valves: in (\d+) .* collisions (\d+))"))) << log;
  EXPECT_EQ(std::stoi(m[1]), kRequests);
  EXPECT_EQ(std::stoi(m[2]), collisions);  // the engine's own count
}

}  // namespace
