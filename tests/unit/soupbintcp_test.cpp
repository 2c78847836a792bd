// SoupBinTCP 3.0: the codec (framing, every client and server packet, builders, strict rejects), the
// session log (retention by count and bytes, contiguous runs, per-key newest index) and the
// `soupbintcp` sink driven in-process over real loopback sockets: login accept/reject, replay,
// live-only logins, replay older than the window, conflation and disconnection of slow consumers,
// heartbeats, client timeout, U/R/O, protocol errors, misrouted messages and Z at stop().
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "protocols/soupbintcp.hpp"
#include "soupbintcp/soupbintcp_sink.hpp"

namespace {

using namespace hypergate::protocols;
using hypergate::Burst;
using hypergate::Message;
using hypergate::soup::SessionLog;
using hypergate::soup::SlowConsumerPolicy;
using hypergate::soup::SoupSink;
using hypergate::soup::SoupSinkOptions;

std::string packet(char type, std::string_view payload) {
  std::string s;
  const std::size_t len = payload.size() + 1;
  s.push_back(static_cast<char>(len >> 8));
  s.push_back(static_cast<char>(len & 0xFF));
  s.push_back(type);
  s.append(payload);
  return s;
}

std::string login_payload(std::string_view user, std::string_view pass, std::string_view session,
                          std::string_view seq) {
  auto pad = [](std::string_view v, std::size_t n) {
    std::string s(v);
    s.resize(n, ' ');
    return s;
  };
  return pad(user, 6) + pad(pass, 10) + pad(session, 10) + std::string(seq);
}

// ------------------------------------------------------------------------------------------------
// Framing

TEST(SoupFraming, PartialFrameWaitsForMoreBytes) {
  const std::string p = packet('S', "hello");
  for (std::size_t n = 0; n < p.size(); ++n) {
    const SoupSplit r = split_soup_frame(std::string_view(p).substr(0, n));
    EXPECT_EQ(r.status, SoupSplitStatus::NeedMore) << n;
  }
  const SoupSplit r = split_soup_frame(p);
  ASSERT_EQ(r.status, SoupSplitStatus::Frame);
  EXPECT_EQ(r.frame.type, 'S');
  EXPECT_EQ(r.frame.payload, "hello");
  EXPECT_EQ(r.frame.size, p.size());
}

TEST(SoupFraming, SplitsBackToBackPacketsFedOneByteAtATime) {
  const std::string stream = packet('R', "") + packet('U', std::string(300, 'x')) + packet('O', "");
  std::string buffered;
  std::vector<std::pair<char, std::size_t>> got;
  for (const char c : stream) {
    buffered.push_back(c);
    for (;;) {
      const SoupSplit r = split_soup_frame(buffered);
      ASSERT_NE(r.status, SoupSplitStatus::Error);
      if (r.status == SoupSplitStatus::NeedMore) break;
      got.emplace_back(r.frame.type, r.frame.payload.size());
      buffered.erase(0, r.frame.size);
    }
  }
  ASSERT_EQ(got.size(), 3u);
  EXPECT_EQ(got[0], std::make_pair('R', std::size_t{0}));
  EXPECT_EQ(got[1], std::make_pair('U', std::size_t{300}));
  EXPECT_EQ(got[2], std::make_pair('O', std::size_t{0}));
  EXPECT_TRUE(buffered.empty());
}

TEST(SoupFraming, ZeroLengthAndOverMaximumAreErrors) {
  const std::string zero("\0\0", 2);
  SoupSplit r = split_soup_frame(zero);
  EXPECT_EQ(r.status, SoupSplitStatus::Error);
  EXPECT_EQ(r.error, SoupError::ZeroLength);
  // Length 48 with a maximum of 47 (the size of L): refused before the bytes even arrive.
  const std::string header("\x00\x30L", 3);
  r = split_soup_frame(header, 47);
  EXPECT_EQ(r.status, SoupSplitStatus::Error);
  EXPECT_EQ(r.error, SoupError::TooLong);
  // Exactly at the maximum is fine.
  const std::string at_max = packet('L', login_payload("u", "p", "", std::string(19, ' ') + "1"));
  r = split_soup_frame(at_max, 47);
  EXPECT_EQ(r.status, SoupSplitStatus::Frame);
}

// ------------------------------------------------------------------------------------------------
// Client packets

TEST(SoupClient, LoginRequestRoundTripsAndStripsPadding) {
  for (const std::uint64_t seq : {std::uint64_t{0}, std::uint64_t{1}, std::uint64_t{123456789},
                                  std::uint64_t{UINT64_MAX}}) {
    char buf[64];
    const std::size_t n = build_soup_login_request(buf, "ab", "secret", "SESS1", seq);
    ASSERT_EQ(n, 49u);
    const SoupSplit r = split_soup_frame(std::string_view(buf, n));
    ASSERT_EQ(r.status, SoupSplitStatus::Frame);
    SoupClientPacket p;
    ASSERT_EQ(parse_soup_client_packet(r.frame, p), SoupError::None);
    EXPECT_EQ(p.type, SoupType::LoginRequest);
    EXPECT_EQ(p.login.username, "ab");
    EXPECT_EQ(p.login.password, "secret");
    EXPECT_EQ(p.login.session, "SESS1");
    EXPECT_EQ(p.login.sequence, seq);
  }
}

TEST(SoupClient, LoginRequestHasTheSpecifiedBytes) {
  char buf[64];
  const std::size_t n = build_soup_login_request(buf, "user", "pw", "", 42);
  const std::string expected = std::string("\x00\x2fL", 3) + "user  " + "pw        " + "          " +
                               std::string(18, ' ') + "42";
  EXPECT_EQ(std::string(buf, n), expected);
}

TEST(SoupClient, SequenceNumberIsStrict) {
  std::uint64_t v = 7;
  EXPECT_TRUE(parse_soup_sequence("                   5", v));
  EXPECT_EQ(v, 5u);
  EXPECT_TRUE(parse_soup_sequence("5                   ", v));  // left-justified clients exist
  EXPECT_EQ(v, 5u);
  EXPECT_TRUE(parse_soup_sequence("00000000000000000000", v));
  EXPECT_EQ(v, 0u);
  EXPECT_TRUE(parse_soup_sequence("18446744073709551615", v));
  EXPECT_EQ(v, UINT64_MAX);
  EXPECT_FALSE(parse_soup_sequence("18446744073709551616", v));  // 2^64
  EXPECT_FALSE(parse_soup_sequence("99999999999999999999", v));
  EXPECT_FALSE(parse_soup_sequence("                    ", v));  // blank
  EXPECT_FALSE(parse_soup_sequence("               1 2  ", v));  // space inside
  EXPECT_FALSE(parse_soup_sequence("                 12a", v));
  EXPECT_FALSE(parse_soup_sequence("                  -1", v));
  EXPECT_FALSE(parse_soup_sequence("                  +1", v));
}

TEST(SoupClient, MalformedLoginRequestsAreRejected) {
  SoupClientPacket p;
  const std::string good = login_payload("u", "p", "", std::string(19, ' ') + "1");
  ASSERT_EQ(good.size(), kSoupLoginRequestPayload);
  SoupFrame f{'L', good, good.size() + 3};
  EXPECT_EQ(parse_soup_client_packet(f, p), SoupError::None);
  const std::string short_one = good.substr(0, 45);
  f.payload = short_one;
  EXPECT_EQ(parse_soup_client_packet(f, p), SoupError::BadPayloadSize);
  const std::string long_one = good + "1";
  f.payload = long_one;
  EXPECT_EQ(parse_soup_client_packet(f, p), SoupError::BadPayloadSize);
  const std::string bad_seq = login_payload("u", "p", "", std::string(19, ' ') + "x");
  f.payload = bad_seq;
  EXPECT_EQ(parse_soup_client_packet(f, p), SoupError::BadSequence);
}

TEST(SoupClient, UnsequencedHeartbeatAndLogout) {
  SoupClientPacket p;
  EXPECT_EQ(parse_soup_client_packet(SoupFrame{'U', "order", 8}, p), SoupError::None);
  EXPECT_EQ(p.type, SoupType::UnsequencedData);
  EXPECT_EQ(p.payload, "order");
  EXPECT_EQ(parse_soup_client_packet(SoupFrame{'R', "", 3}, p), SoupError::None);
  EXPECT_EQ(p.type, SoupType::ClientHeartbeat);
  EXPECT_EQ(parse_soup_client_packet(SoupFrame{'O', "", 3}, p), SoupError::None);
  EXPECT_EQ(p.type, SoupType::LogoutRequest);
  EXPECT_EQ(parse_soup_client_packet(SoupFrame{'R', "x", 4}, p), SoupError::BadPayloadSize);
  EXPECT_EQ(parse_soup_client_packet(SoupFrame{'O', "x", 4}, p), SoupError::BadPayloadSize);
  // Server packet types are not client packets.
  for (const char t : {'S', 'A', 'J', 'H', 'Z', '+', 'x', '\0'}) {
    EXPECT_EQ(parse_soup_client_packet(SoupFrame{t, "", 3}, p), SoupError::UnknownType) << t;
  }
}

// ------------------------------------------------------------------------------------------------
// Server packets

TEST(SoupServer, LoginAcceptedRoundTripsWithSessionPaddedOnTheLeft) {
  char buf[64];
  const std::size_t n = build_soup_login_accepted(buf, "20261123", 1001);
  ASSERT_EQ(n, 33u);
  EXPECT_EQ(std::string(buf + 3, 30), "  20261123" + std::string(16, ' ') + "1001");
  const SoupSplit r = split_soup_frame(std::string_view(buf, n));
  ASSERT_EQ(r.status, SoupSplitStatus::Frame);
  SoupServerPacket p;
  ASSERT_EQ(parse_soup_server_packet(r.frame, p), SoupError::None);
  EXPECT_EQ(p.type, SoupType::LoginAccepted);
  EXPECT_EQ(p.accepted.session, "20261123");
  EXPECT_EQ(p.accepted.sequence, 1001u);
}

TEST(SoupServer, EveryServerPacketRoundTrips) {
  char buf[128];
  SoupServerPacket p;
  for (const auto reason : {SoupRejectReason::NotAuthorized, SoupRejectReason::SessionUnavailable}) {
    const std::size_t n = build_soup_login_rejected(buf, reason);
    ASSERT_EQ(n, 4u);
    const SoupSplit r = split_soup_frame(std::string_view(buf, n));
    ASSERT_EQ(parse_soup_server_packet(r.frame, p), SoupError::None);
    EXPECT_EQ(p.type, SoupType::LoginRejected);
    EXPECT_EQ(p.reason, reason);
  }
  for (const auto& [type, payload] : {std::pair{SoupType::SequencedData, std::string_view("abc\0def", 7)},
                                     std::pair{SoupType::Debug, std::string_view("hello")},
                                     std::pair{SoupType::ServerHeartbeat, std::string_view()},
                                     std::pair{SoupType::EndOfSession, std::string_view()}}) {
    const std::size_t n = build_soup_packet(buf, type, payload);
    ASSERT_EQ(n, 3 + payload.size());
    const SoupSplit r = split_soup_frame(std::string_view(buf, n));
    ASSERT_EQ(r.status, SoupSplitStatus::Frame);
    ASSERT_EQ(parse_soup_server_packet(r.frame, p), SoupError::None);
    EXPECT_EQ(p.type, type);
    EXPECT_EQ(p.payload, payload);
  }
}

TEST(SoupServer, MalformedServerPacketsAreRejected) {
  SoupServerPacket p;
  EXPECT_EQ(parse_soup_server_packet(SoupFrame{'J', "X", 4}, p), SoupError::BadReason);
  EXPECT_EQ(parse_soup_server_packet(SoupFrame{'J', "AS", 5}, p), SoupError::BadPayloadSize);
  EXPECT_EQ(parse_soup_server_packet(SoupFrame{'J', "", 3}, p), SoupError::BadPayloadSize);
  EXPECT_EQ(parse_soup_server_packet(SoupFrame{'H', "x", 4}, p), SoupError::BadPayloadSize);
  EXPECT_EQ(parse_soup_server_packet(SoupFrame{'Z', "x", 4}, p), SoupError::BadPayloadSize);
  EXPECT_EQ(parse_soup_server_packet(SoupFrame{'A', "short", 8}, p), SoupError::BadPayloadSize);
  const std::string bad_seq = "  20261123" + std::string(19, ' ') + "?";
  EXPECT_EQ(parse_soup_server_packet(SoupFrame{'A', bad_seq, 33}, p), SoupError::BadSequence);
  for (const char t : {'L', 'U', 'R', 'O', 'q'}) {
    EXPECT_EQ(parse_soup_server_packet(SoupFrame{t, "", 3}, p), SoupError::UnknownType) << t;
  }
}

TEST(SoupBuilders, RefuseWhatDoesNotFit) {
  char small[10];
  EXPECT_EQ(build_soup_login_request(small, "u", "p", "", 1), 0u);
  EXPECT_EQ(build_soup_login_accepted(small, "s", 1), 0u);
  EXPECT_EQ(build_soup_packet(small, SoupType::SequencedData, "12345678"), 0u);  // 11 > 10
  EXPECT_EQ(build_soup_packet(small, SoupType::SequencedData, "1234567"), 10u);
  char buf[64];
  EXPECT_EQ(build_soup_login_request(buf, "toolong", "p", "", 1), 0u);
  EXPECT_EQ(build_soup_login_request(buf, "u", "01234567890", "", 1), 0u);
  EXPECT_EQ(build_soup_login_request(buf, "u", "p", "01234567890", 1), 0u);
  EXPECT_EQ(build_soup_login_accepted(buf, "01234567890", 1), 0u);
  std::vector<char> big(70'000);
  const std::string payload(kSoupMaxPayload + 1, 'x');
  EXPECT_EQ(build_soup_packet(big, SoupType::SequencedData, payload), 0u);
  EXPECT_EQ(build_soup_packet(big, SoupType::SequencedData, std::string_view(payload).substr(1)),
            kSoupMaxPayload + 3);
  EXPECT_FALSE(write_soup_header(std::span<char>(buf, 2), SoupType::ServerHeartbeat, 0));
}

// ------------------------------------------------------------------------------------------------
// Session log

std::uint64_t h(std::string_view k) { return hypergate::hash_bytes(k.data(), k.size()); }

TEST(SessionLog, SequencesAndKeepsWholePackets) {
  SessionLog log;
  ASSERT_TRUE(log.reserve(8, 4096, 16).ok());
  EXPECT_EQ(log.head(), 1u);
  EXPECT_EQ(log.oldest(), 1u);
  ASSERT_TRUE(log.append("A", h("A"), "one"));
  ASSERT_TRUE(log.append("B", h("B"), "two!"));
  EXPECT_EQ(log.head(), 3u);
  EXPECT_EQ(log.packet(1), packet('S', "one"));
  EXPECT_EQ(log.packet(2), packet('S', "two!"));
  std::uint64_t count = 0;
  EXPECT_EQ(log.run(1, 1000, count), packet('S', "one") + packet('S', "two!"));
  EXPECT_EQ(count, 2u);
  EXPECT_EQ(log.run(1, 7, count), packet('S', "one"));  // the second does not fit 7 bytes
  EXPECT_EQ(count, 1u);
  EXPECT_TRUE(log.run(1, 5, count).empty());
  EXPECT_EQ(count, 0u);
}

TEST(SessionLog, EvictsByCount) {
  SessionLog log;
  ASSERT_TRUE(log.reserve(5, 4096, 16).ok());
  for (int i = 1; i <= 12; ++i) ASSERT_TRUE(log.append("k", h("k"), "m" + std::to_string(i)));
  EXPECT_EQ(log.head(), 13u);
  EXPECT_EQ(log.oldest(), 8u);
  for (std::uint64_t s = 8; s < 13; ++s) EXPECT_EQ(log.packet(s), packet('S', "m" + std::to_string(s)));
}

TEST(SessionLog, EvictsByBytesAndNeverSplitsAPacketAtTheWrap) {
  SessionLog log;
  ASSERT_TRUE(log.reserve(1000, 100, 16).ok());
  // 30-byte packets: 3 fit in 100 bytes; the 4th starts again at 0 (10 bytes of padding).
  const std::string payload(27, 'p');
  for (int i = 0; i < 10; ++i) {
    std::string p = payload;
    p[0] = static_cast<char>('a' + i);
    ASSERT_TRUE(log.append("", 0, p));
    for (std::uint64_t s = log.oldest(); s < log.head(); ++s) {
      std::string want = payload;
      want[0] = static_cast<char>('a' + s - 1);
      EXPECT_EQ(log.packet(s), packet('S', want)) << "after " << i << " seq " << s;
    }
    EXPECT_LE(log.head() - log.oldest(), 3u);
  }
  EXPECT_EQ(log.head(), 11u);
  // A run stops at the wrap even with room to spare.
  std::uint64_t count = 0;
  (void)log.run(log.oldest(), 1000, count);
  EXPECT_GE(count, 1u);
  EXPECT_LE(count, 3u);
  EXPECT_FALSE(log.append("", 0, std::string(98, 'x')));  // 101 bytes > the ring
}

TEST(SessionLog, NewestPerKey) {
  SessionLog log;
  ASSERT_TRUE(log.reserve(64, 4096, 2).ok());  // two keys tracked at most
  ASSERT_TRUE(log.append("AAPL", h("AAPL"), "1"));
  ASSERT_TRUE(log.append("MSFT", h("MSFT"), "2"));
  ASSERT_TRUE(log.append("AAPL", h("AAPL"), "3"));
  ASSERT_TRUE(log.append("", 0, "4"));             // no key: never conflated
  ASSERT_TRUE(log.append("IBM", h("IBM"), "5"));   // third key: not tracked, never conflated
  ASSERT_TRUE(log.append("IBM", h("IBM"), "6"));
  EXPECT_FALSE(log.is_newest(1));
  EXPECT_TRUE(log.is_newest(2));
  EXPECT_TRUE(log.is_newest(3));
  EXPECT_TRUE(log.is_newest(4));
  EXPECT_TRUE(log.is_newest(5));
  EXPECT_TRUE(log.is_newest(6));
}

// ------------------------------------------------------------------------------------------------
// The sink, in-process: the test thread plays the worker (service()) and the clients (non-blocking
// sockets), so nothing here waits on another thread.

auto packets_at_least(std::size_t n) {
  return [n](const std::string& bytes, bool) {
    std::size_t count = 0;
    std::string_view v(bytes);
    for (;;) {
      const SoupSplit r = split_soup_frame(v);
      if (r.status != SoupSplitStatus::Frame) break;
      ++count;
      v.remove_prefix(r.frame.size);
    }
    return count >= n;
  };
}

class SoupSinkTest : public ::testing::Test {
 protected:
  static SoupSinkOptions options() {
    SoupSinkOptions o;
    o.host = "127.0.0.1";
    o.port = 0;
    o.username = "hguser";
    o.password = "secret";
    o.session = "TESTSESS";
    o.max_subscribers = 8;
    o.retain = 1000;
    o.max_lag = 500;
    return o;
  }

  void start(const SoupSinkOptions& o) {
    sink_ = std::make_unique<SoupSink>(o);
    ASSERT_TRUE(sink_->start().ok());
    ASSERT_NE(sink_->port(), 0);
  }

  void TearDown() override {
    if (sink_) sink_->stop();
    for (const int fd : fds_) close(fd);
  }

  int connect_client() {
    const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(sink_->port());
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
    fcntl(fd, F_SETFL, O_NONBLOCK);
    fds_.push_back(fd);
    return fd;
  }

  void send_bytes(int fd, const std::string& s) {
    ASSERT_EQ(::send(fd, s.data(), s.size(), MSG_NOSIGNAL), static_cast<ssize_t>(s.size()));
  }

  std::string login(std::string_view user, std::string_view pass, std::string_view session, std::uint64_t seq) {
    char buf[64];
    const std::size_t n = build_soup_login_request(buf, user, pass, session, seq);
    return std::string(buf, n);
  }

  void publish(int n, int keys, int first = 1) {
    Burst<> burst;
    for (int i = first; i < first + n; ++i) {
      payloads_.push_back("msg" + std::to_string(i));
      keys_.push_back("K" + std::to_string((i - 1) % keys));
    }
    // Build bursts only after the vectors stopped growing (views into their strings).
    for (std::size_t i = payloads_.size() - static_cast<std::size_t>(n); i < payloads_.size(); ++i) {
      Message& m = burst.emplace_back();
      m.set_payload(payloads_[i].data(), payloads_[i].size());
      m.set_key(keys_[i]);
      if (burst.size() == burst.capacity()) {
        ASSERT_EQ(sink_->send(burst), burst.size());
        burst.clear();
      }
    }
    if (!burst.empty()) {
      ASSERT_EQ(sink_->send(burst), burst.size());
    }
  }

  struct Subscription {
    int fd = -1;
    std::string got;  // every byte received
    bool closed = false;
  };
  /// Connects, logs in from `seq` and services the sink until `packets` packets arrived.
  Subscription subscribe(std::uint64_t seq, std::size_t packets) {
    Subscription sub;
    sub.fd = connect_client();
    send_bytes(sub.fd, login("hguser", "secret", "", seq));
    EXPECT_TRUE(pump(sub.fd, sub.got, sub.closed, packets_at_least(packets)));
    return sub;
  }

  /// Services the sink and reads from `fd` until `done(received, closed)` or 5 s pass.
  template <class Done>
  bool pump(int fd, std::string& received, bool& closed, Done done, int timeout_ms = 5000) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    while (std::chrono::steady_clock::now() < deadline) {
      sink_->service();
      char buf[65536];
      for (;;) {
        const ssize_t r = recv(fd, buf, sizeof(buf), 0);
        if (r > 0) {
          received.append(buf, static_cast<std::size_t>(r));
          continue;
        }
        if (r == 0) closed = true;
        break;
      }
      if (done(received, closed)) return true;
      std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
    return false;
  }

  /// Services the sink for `ms` milliseconds, collecting what `fd` receives.
  void pump_for(int fd, std::string& received, bool& closed, int ms) {
    (void)pump(fd, received, closed, [](const std::string&, bool) { return false; }, ms);
  }

  static std::vector<SoupServerPacket> parse_all(const std::string& bytes, std::size_t* rest = nullptr) {
    std::vector<SoupServerPacket> out;
    std::string_view v(bytes);
    for (;;) {
      const SoupSplit r = split_soup_frame(v);
      if (r.status != SoupSplitStatus::Frame) break;
      SoupServerPacket p;
      EXPECT_EQ(parse_soup_server_packet(r.frame, p), SoupError::None);
      out.push_back(p);
      v.remove_prefix(r.frame.size);
    }
    if (rest != nullptr) *rest = v.size();
    return out;
  }

  static std::size_t count_type(const std::vector<SoupServerPacket>& ps, SoupType t) {
    std::size_t n = 0;
    for (const auto& p : ps) n += p.type == t ? 1 : 0;
    return n;
  }

  std::unique_ptr<SoupSink> sink_;
  std::vector<int> fds_;
  std::vector<std::string> payloads_;
  std::vector<std::string> keys_;
};

auto closed_peer() {
  return [](const std::string&, bool closed) { return closed; };
}

TEST_F(SoupSinkTest, BadCredentialsAndWrongSessionAreRejected) {
  start(options());
  struct Case {
    std::string user, pass, session;
    SoupRejectReason reason;
  };
  for (const Case& c : {Case{"hguser", "wrong", "", SoupRejectReason::NotAuthorized},
                        Case{"nobody", "secret", "", SoupRejectReason::NotAuthorized},
                        Case{"HGUSER", "secret", "OTHER", SoupRejectReason::SessionUnavailable}}) {
    const int fd = connect_client();
    send_bytes(fd, login(c.user, c.pass, c.session, 1));
    std::string got;
    bool closed = false;
    ASSERT_TRUE(pump(fd, got, closed, closed_peer())) << c.user;
    const auto ps = parse_all(got);
    ASSERT_EQ(ps.size(), 1u);
    EXPECT_EQ(ps[0].type, SoupType::LoginRejected);
    EXPECT_EQ(ps[0].reason, c.reason);
  }
  EXPECT_EQ(sink_->counters().logins_rejected, 3u);
  EXPECT_EQ(sink_->counters().logins_accepted, 0u);
}

TEST_F(SoupSinkTest, ReplayFromOneThenLiveMessages) {
  start(options());
  publish(50, 4);
  const int fd = connect_client();
  send_bytes(fd, login("HGuser", "secret", "TESTSESS", 1));  // username is case-insensitive
  std::string got;
  bool closed = false;
  ASSERT_TRUE(pump(fd, got, closed, packets_at_least(51)));
  publish(10, 4, 51);
  ASSERT_TRUE(pump(fd, got, closed, packets_at_least(61)));
  const auto ps = parse_all(got);
  ASSERT_EQ(ps.size(), 61u);
  EXPECT_EQ(ps[0].type, SoupType::LoginAccepted);
  EXPECT_EQ(ps[0].accepted.session, "TESTSESS");
  EXPECT_EQ(ps[0].accepted.sequence, 1u);
  for (std::size_t i = 1; i < ps.size(); ++i) {
    EXPECT_EQ(ps[i].type, SoupType::SequencedData);
    EXPECT_EQ(ps[i].payload, "msg" + std::to_string(i));
  }
  EXPECT_EQ(sink_->counters().messages_sent, 60u);
  EXPECT_EQ(sink_->counters().subscribers, 1u);
  EXPECT_EQ(sink_->stats().messages, 60u);
}

TEST_F(SoupSinkTest, SequenceZeroIsLiveOnlyAndLaterSequenceReplaysTheTail) {
  start(options());
  publish(30, 3);
  const int live = connect_client();
  send_bytes(live, login("hguser", "secret", "", 0));
  const int tail = connect_client();
  send_bytes(tail, login("hguser", "secret", "", 21));
  const int beyond = connect_client();
  send_bytes(beyond, login("hguser", "secret", "", 1000));  // beyond the head: live
  std::string got_live, got_tail, got_beyond;
  bool c1 = false, c2 = false, c3 = false;
  ASSERT_TRUE(pump(live, got_live, c1, packets_at_least(1)));
  ASSERT_TRUE(pump(tail, got_tail, c2, packets_at_least(11)));
  ASSERT_TRUE(pump(beyond, got_beyond, c3, packets_at_least(1)));
  publish(1, 3, 31);
  ASSERT_TRUE(pump(live, got_live, c1, packets_at_least(2)));
  ASSERT_TRUE(pump(beyond, got_beyond, c3, packets_at_least(2)));
  ASSERT_TRUE(pump(tail, got_tail, c2, packets_at_least(12)));
  for (const std::string* g : {&got_live, &got_beyond}) {
    const auto ps = parse_all(*g);
    ASSERT_EQ(ps.size(), 2u);
    EXPECT_EQ(ps[0].type, SoupType::LoginAccepted);
    EXPECT_EQ(ps[0].accepted.sequence, 31u);
    EXPECT_EQ(ps[1].payload, "msg31");
  }
  const auto ps = parse_all(got_tail);
  ASSERT_EQ(ps.size(), 12u);
  EXPECT_EQ(ps[0].accepted.sequence, 21u);
  for (std::size_t i = 1; i < ps.size(); ++i) EXPECT_EQ(ps[i].payload, "msg" + std::to_string(20 + i));
}

TEST_F(SoupSinkTest, ReplayOlderThanTheWindowStartsAtTheOldestWithADebugLine) {
  SoupSinkOptions o = options();
  o.retain = 10;
  o.max_lag = 9;
  start(o);
  publish(50, 5);
  auto [fd, got, closed] = subscribe(1, 12);
  ASSERT_FALSE(HasFailure());
  const auto ps = parse_all(got);
  ASSERT_EQ(ps.size(), 12u);
  EXPECT_EQ(ps[0].type, SoupType::Debug);
  EXPECT_NE(ps[0].payload.find("older than the retained window"), std::string_view::npos) << ps[0].payload;
  EXPECT_EQ(ps[1].type, SoupType::LoginAccepted);
  EXPECT_EQ(ps[1].accepted.sequence, 41u);
  for (std::size_t i = 2; i < ps.size(); ++i) EXPECT_EQ(ps[i].payload, "msg" + std::to_string(39 + i));
}

TEST_F(SoupSinkTest, AReplayLongerThanMaxLagIsNotConflated) {
  SoupSinkOptions o = options();
  o.max_lag = 10;
  start(o);
  publish(100, 4);
  auto [fd, got, closed] = subscribe(1, 101);
  ASSERT_FALSE(HasFailure());
  const auto ps = parse_all(got);
  ASSERT_EQ(ps.size(), 101u);
  for (std::size_t i = 1; i < ps.size(); ++i) EXPECT_EQ(ps[i].payload, "msg" + std::to_string(i));
  EXPECT_EQ(sink_->counters().conflated, 0u);
}

TEST_F(SoupSinkTest, ConflateSendsOnlyTheNewestPerKeyOfTheSkippedRange) {
  SoupSinkOptions o = options();
  o.max_lag = 10;
  o.slow_consumer = SlowConsumerPolicy::Conflate;
  start(o);
  auto [fd, got, closed] = subscribe(0, 1);
  ASSERT_FALSE(HasFailure());
  publish(100, 4);  // without service(): the subscriber is now 100 behind
  ASSERT_TRUE(pump(fd, got, closed, packets_at_least(5)));
  pump_for(fd, got, closed, 50);
  auto ps = parse_all(got);
  ASSERT_EQ(ps.size(), 5u);
  EXPECT_EQ(ps[1].payload, "msg97");  // K0, K1, K2, K3 newest, in log order
  EXPECT_EQ(ps[2].payload, "msg98");
  EXPECT_EQ(ps[3].payload, "msg99");
  EXPECT_EQ(ps[4].payload, "msg100");
  EXPECT_EQ(sink_->counters().conflated, 96u);
  // Then it streams normally again.
  publish(3, 4, 101);
  ASSERT_TRUE(pump(fd, got, closed, packets_at_least(8)));
  ps = parse_all(got);
  EXPECT_EQ(ps[7].payload, "msg103");
  EXPECT_FALSE(closed);
}

TEST_F(SoupSinkTest, DisconnectPolicyClosesASlowConsumerWithAReason) {
  SoupSinkOptions o = options();
  o.max_lag = 10;
  o.slow_consumer = SlowConsumerPolicy::Disconnect;
  start(o);
  auto [fd, got, closed] = subscribe(0, 1);
  ASSERT_FALSE(HasFailure());
  publish(11, 4);  // 11 > max_lag
  ASSERT_TRUE(pump(fd, got, closed, closed_peer()));
  const auto ps = parse_all(got);
  ASSERT_EQ(ps.size(), 2u);
  EXPECT_EQ(ps[1].type, SoupType::Debug);
  EXPECT_NE(ps[1].payload.find("slow consumer"), std::string_view::npos);
  EXPECT_EQ(sink_->counters().disconnected, 1u);
  EXPECT_EQ(sink_->counters().subscribers, 0u);
}

TEST_F(SoupSinkTest, HeartbeatsWhileSilentAndTimeoutWithoutClientTraffic) {
  SoupSinkOptions o = options();
  o.heartbeat_interval_ns = 100'000'000;  // 100 ms
  o.client_timeout_ns = 600'000'000;      // 600 ms
  start(o);
  const int keep = connect_client();
  send_bytes(keep, login("hguser", "secret", "", 0));
  const int silent = connect_client();
  send_bytes(silent, login("hguser", "secret", "", 0));
  std::string got_keep, got_silent;
  bool closed_keep = false, closed_silent = false;
  // The silent client is dropped; the other one sends R and stays.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (!closed_silent && std::chrono::steady_clock::now() < deadline) {
    send_bytes(keep, packet('R', ""));
    pump_for(keep, got_keep, closed_keep, 50);
    pump_for(silent, got_silent, closed_silent, 50);
  }
  ASSERT_TRUE(closed_silent);
  EXPECT_FALSE(closed_keep);
  const auto ps = parse_all(got_silent);
  ASSERT_GE(ps.size(), 3u);
  EXPECT_EQ(ps[0].type, SoupType::LoginAccepted);
  EXPECT_EQ(count_type(ps, SoupType::ServerHeartbeat), ps.size() - 1);
  EXPECT_GE(sink_->counters().timeouts, 1u);
  EXPECT_GE(sink_->counters().heartbeats, 2u);
  EXPECT_EQ(sink_->counters().subscribers, 1u);
}

TEST_F(SoupSinkTest, UnsequencedIsCountedLogoutClosesAndGarbageIsAProtocolError) {
  start(options());
  const int fd = connect_client();
  send_bytes(fd, login("hguser", "secret", "", 0) + packet('U', "ignored") + packet('R', "") + packet('O', ""));
  std::string got;
  bool closed = false;
  ASSERT_TRUE(pump(fd, got, closed, closed_peer()));
  EXPECT_EQ(parse_all(got).size(), 1u);
  EXPECT_EQ(sink_->counters().unsequenced, 1u);
  const int bad = connect_client();
  send_bytes(bad, std::string("\x00\x01S", 3));  // a server packet type from a client
  std::string got_bad;
  bool closed_bad = false;
  ASSERT_TRUE(pump(bad, got_bad, closed_bad, closed_peer()));
  EXPECT_TRUE(got_bad.empty());
  const int zero = connect_client();
  send_bytes(zero, std::string("\x00\x00", 2));
  std::string got_zero;
  bool closed_zero = false;
  ASSERT_TRUE(pump(zero, got_zero, closed_zero, closed_peer()));
  EXPECT_EQ(sink_->counters().protocol_errors, 2u);
}

TEST_F(SoupSinkTest, StopSendsTheRestThenEndOfSession) {
  start(options());
  auto [fd, got, closed] = subscribe(1, 1);
  ASSERT_FALSE(HasFailure());
  publish(20, 2);
  sink_->stop();  // streams what is left, then Z, then closes
  fcntl(fd, F_SETFL, 0);
  timeval tv{5, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  char buf[4096];
  for (;;) {
    const ssize_t r = recv(fd, buf, sizeof(buf), 0);
    if (r <= 0) break;
    got.append(buf, static_cast<std::size_t>(r));
  }
  std::size_t rest = 0;
  const auto ps = parse_all(got, &rest);
  EXPECT_EQ(rest, 0u);
  ASSERT_EQ(ps.size(), 22u);
  EXPECT_EQ(ps[20].payload, "msg20");
  EXPECT_EQ(ps.back().type, SoupType::EndOfSession);
}

TEST(SoupSinkWorkers, OnlyTheConfiguredWorkerListensOthersCountMisroutedMessages) {
  SoupSinkOptions o;
  o.username = "u";
  o.password = "p";
  o.session = "S";
  o.worker = 1;
  o.this_worker = 0;
  o.port = 0;
  SoupSink sink(o);
  ASSERT_TRUE(sink.start().ok());
  EXPECT_FALSE(sink.listening());
  EXPECT_EQ(sink.port(), 0);
  Burst<> burst;
  const std::string payload = "x";
  for (int i = 0; i < 3; ++i) burst.emplace_back().set_payload(payload.data(), payload.size());
  EXPECT_EQ(sink.send(burst), 3u);
  EXPECT_EQ(sink.stats().errors, 3u);
  EXPECT_EQ(sink.counters().misrouted, 3u);
  EXPECT_EQ(sink.counters().messages_logged, 0u);
  EXPECT_EQ(sink.service(), 0u);
  sink.stop();
}

}  // namespace
