// `udp` source and sink over real loopback sockets, built through the adapter Registry from TOML:
// multicast join and batched receive, unicast, truncation, kernel timestamps, kernel drops
// (SO_RXQ_OVFL), buffer lifetime until release(); raw and MoldUDP64 sinks decoded with the codec
// (contiguous sequences, MTU respected, heartbeats, end of session, re-requests from the ring),
// non-owner instances, and configuration errors. Every receive has a 5 s socket timeout and every
// polling loop a bound, so a broken adapter fails a test instead of hanging it; nothing is timed.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <cstring>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "hypergate/adapter/registry.hpp"
#include "hypergate/config/config.hpp"
#include "hypergate/core/clock.hpp"
#include "protocols/moldudp64.hpp"
#include "udp/packet_ring.hpp"
#include "udp/udp_sink.hpp"
#include "udp/udp_source.hpp"

namespace {

using namespace hypergate;
namespace mold = hypergate::protocols::mold;
using namespace std::chrono_literals;

// ---- plain test sockets --------------------------------------------------------------------------
class TestSocket {
 public:
  TestSocket() : fd_(socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0)) {
    timeval tv{5, 0};
    setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    in_addr lo{};
    lo.s_addr = htonl(INADDR_LOOPBACK);
    setsockopt(fd_, IPPROTO_IP, IP_MULTICAST_IF, &lo, sizeof(lo));
    const int one = 1;
    setsockopt(fd_, IPPROTO_IP, IP_MULTICAST_LOOP, &one, sizeof(one));
  }
  ~TestSocket() { close(fd_); }
  TestSocket(const TestSocket&) = delete;
  TestSocket& operator=(const TestSocket&) = delete;

  /// Binds to `ip`:port (0 = any free port) and returns the port.
  std::uint16_t bind_to(const char* ip, std::uint16_t port = 0) {
    const int one = 1;
    setsockopt(fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    setsockopt(fd_, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
    sockaddr_in a = addr(ip, port);
    if (bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) return 0;
    socklen_t len = sizeof(a);
    getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
    return ntohs(a.sin_port);
  }
  bool join(const char* group) {
    ip_mreq m{};
    inet_pton(AF_INET, group, &m.imr_multiaddr);
    m.imr_interface.s_addr = htonl(INADDR_LOOPBACK);
    return setsockopt(fd_, IPPROTO_IP, IP_ADD_MEMBERSHIP, &m, sizeof(m)) == 0;
  }
  bool send_to(const char* ip, std::uint16_t port, const std::string& payload) {
    const sockaddr_in a = addr(ip, port);
    return sendto(fd_, payload.data(), payload.size(), 0, reinterpret_cast<const sockaddr*>(&a), sizeof(a)) ==
           static_cast<ssize_t>(payload.size());
  }
  /// One datagram (empty on timeout), MSG_DONTWAIT when `wait` is false.
  std::string receive(bool wait = true) {
    std::string buf(70000, '\0');
    const ssize_t n = recv(fd_, buf.data(), buf.size(), wait ? 0 : MSG_DONTWAIT);
    buf.resize(n > 0 ? static_cast<std::size_t>(n) : 0);
    return buf;
  }
  [[nodiscard]] int fd() const { return fd_; }

  static sockaddr_in addr(const char* ip, std::uint16_t port) {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    inet_pton(AF_INET, ip, &a.sin_addr);
    return a;
  }

 private:
  int fd_;
};

// ---- adapters from TOML through the registry -----------------------------------------------------
struct Built {
  std::unique_ptr<config::Document> doc;
  std::unique_ptr<adapter::Source> source;
  std::unique_ptr<adapter::Sink> sink;
  std::string error;  // factory error + diagnostics
};

Built build(const std::string& toml, unsigned worker = 0, unsigned workers = 1) {
  Built b;
  auto doc = config::Document::parse(toml, "udp.toml");
  if (!doc.ok()) {
    b.error = doc.error().message;
    return b;
  }
  b.doc = std::move(doc).value();
  adapter::Context ctx{"t", 0, workers, worker};
  for (config::Section s : b.doc->instances("source")) {
    (void)s.string("type", "");
    auto made = (*adapter::Registry::global().source("udp"))(s, ctx);
    if (made) b.source = std::move(made).value(); else b.error = made.error().message;
    s.finish();
  }
  for (config::Section s : b.doc->instances("sink")) {
    (void)s.string("type", "");
    auto made = (*adapter::Registry::global().sink("udp"))(s, ctx);
    if (made) b.sink = std::move(made).value(); else b.error = made.error().message;
    s.finish();
  }
  if (!b.doc->diagnostics().empty()) b.error += "\n" + b.doc->diagnostics().format();
  return b;
}

udp::UdpSource& as_udp(adapter::Source& s) { return dynamic_cast<udp::UdpSource&>(s); }
udp::UdpSink& as_udp(adapter::Sink& s) { return dynamic_cast<udp::UdpSink&>(s); }

/// Polls until `want` messages arrived (copied out; each burst released) or ~5 s passed.
std::vector<std::string> poll_n(adapter::Source& src, std::size_t want, std::vector<std::uint64_t>* rx = nullptr) {
  std::vector<std::string> got;
  Burst<> burst;
  for (int spins = 0; got.size() < want && spins < 5000; ++spins) {
    burst.clear();
    const std::size_t n = src.poll(burst);
    EXPECT_EQ(n, burst.size());
    for (const Message& m : burst) {
      got.emplace_back(m.text());
      if (rx != nullptr) rx->push_back(m.rx_tsc);
    }
    if (n != 0) {
      src.release(burst);
    } else {
      std::this_thread::sleep_for(1ms);
    }
  }
  return got;
}

/// Polls until the socket stayed empty for 20 consecutive polls; returns how many messages arrived.
std::size_t drain(adapter::Source& src) {
  std::size_t got = 0;
  Burst<> burst;
  for (int idle = 0; idle < 20;) {
    burst.clear();
    const std::size_t n = src.poll(burst);
    got += n;
    if (n != 0) {
      src.release(burst);
      idle = 0;
    } else {
      ++idle;
      std::this_thread::sleep_for(1ms);
    }
  }
  return got;
}

std::string payload(std::size_t i, std::size_t size) {
  std::string p = "msg-" + std::to_string(i) + "-";
  while (p.size() < size) p.push_back(static_cast<char>('a' + (p.size() + i) % 26));
  p.resize(size);
  return p;
}

Burst<> burst_of(const std::vector<std::string>& payloads) {
  Burst<> b;
  for (const std::string& p : payloads) b.emplace_back().set_payload(p.data(), p.size());
  return b;
}

// ---- source --------------------------------------------------------------------------------------
TEST(UdpSource, JoinsMulticastAndReceivesABatchInOrderWithKernelTimestamps) {
  Built b = build("[source.feed]\ntype = \"udp\"\nlisten = \"239.77.1.1:0\"\ninterface = \"127.0.0.1\"\n");
  ASSERT_TRUE(b.source) << b.error;
  ASSERT_TRUE(b.source->start().ok());
  const std::uint16_t port = as_udp(*b.source).local_port();
  ASSERT_NE(port, 0);

  TestSocket tx;
  std::vector<std::string> sent;
  for (std::size_t i = 0; i < 40; ++i) {
    sent.push_back(payload(i, 20 + i));
    ASSERT_TRUE(tx.send_to("239.77.1.1", port, sent.back()));
  }
  std::vector<std::uint64_t> rx;
  const std::uint64_t before = TscClock::ticks();
  EXPECT_EQ(poll_n(*b.source, sent.size(), &rx), sent);
  const auto& clock = TscClock::instance();
  const std::uint64_t now = TscClock::ticks();
  for (std::uint64_t t : rx) {
    ASSERT_NE(t, 0u);
    // Kernel stamps converted to TSC land near "now" (a sanity bound, not a timing assertion).
    const std::uint64_t diff = t > now ? t - now : now - t;
    EXPECT_LT(clock.to_ns(diff), 10'000'000'000ull);
  }
  (void)before;
  const adapter::SourceStats s = b.source->stats();
  EXPECT_EQ(s.messages, sent.size());
  std::uint64_t bytes = 0;
  for (const auto& p : sent) bytes += p.size();
  EXPECT_EQ(s.bytes, bytes);
  EXPECT_GE(s.polls, 2u);  // 40 datagrams never fit one burst of 32
  EXPECT_EQ(s.rejects, 0u);
  EXPECT_EQ(s.errors, 0u);
  b.source->stop();
}

TEST(UdpSource, PollTakesAtMostTheBurstsFreeRoom) {
  Built b = build("[source.feed]\ntype = \"udp\"\nlisten = \"127.0.0.1:0\"\n");
  ASSERT_TRUE(b.source) << b.error;
  ASSERT_TRUE(b.source->start().ok());
  const std::uint16_t port = as_udp(*b.source).local_port();
  TestSocket tx;
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(tx.send_to("127.0.0.1", port, payload(static_cast<std::size_t>(i), 8)));
  Burst<> burst;
  for (std::size_t i = 0; i < Burst<>::kCapacity - 3; ++i) burst.emplace_back();
  std::size_t got = 0;
  for (int spins = 0; got == 0 && spins < 5000; ++spins) {
    got = b.source->poll(burst);
    if (got == 0) std::this_thread::sleep_for(1ms);
  }
  EXPECT_GE(got, 1u);
  EXPECT_LE(got, 3u);
  EXPECT_EQ(burst.size(), Burst<>::kCapacity - 3 + got);
  EXPECT_EQ(b.source->poll(burst), 0u);  // full burst: nothing read
  b.source->release(burst);
  EXPECT_EQ(poll_n(*b.source, 10 - got).size(), 10 - got);
}

TEST(UdpSource, UnicastWithTimestampsOffFallsBackToPollTime) {
  Built b = build("[source.u]\ntype = \"udp\"\nlisten = \"127.0.0.1:0\"\ntimestamps = false\n");
  ASSERT_TRUE(b.source) << b.error;
  ASSERT_TRUE(b.source->start().ok());
  TestSocket tx;
  const std::uint64_t before = TscClock::ticks();
  ASSERT_TRUE(tx.send_to("127.0.0.1", as_udp(*b.source).local_port(), "hello"));
  std::vector<std::uint64_t> rx;
  EXPECT_EQ(poll_n(*b.source, 1, &rx), std::vector<std::string>{"hello"});
  ASSERT_EQ(rx.size(), 1u);
  EXPECT_GE(rx[0], before);  // stamped at poll, after the send
  EXPECT_LE(rx[0], TscClock::ticks());
}

TEST(UdpSource, TruncatedDatagramsAreCountedRejects) {
  Built b = build("[source.u]\ntype = \"udp\"\nlisten = \"127.0.0.1:0\"\nmax_datagram = 64\n");
  ASSERT_TRUE(b.source) << b.error;
  ASSERT_TRUE(b.source->start().ok());
  TestSocket tx;
  const std::uint16_t port = as_udp(*b.source).local_port();
  ASSERT_TRUE(tx.send_to("127.0.0.1", port, std::string(100, 'x')));
  ASSERT_TRUE(tx.send_to("127.0.0.1", port, std::string(64, 'y')));  // exactly fits
  ASSERT_TRUE(tx.send_to("127.0.0.1", port, "z"));
  EXPECT_EQ(poll_n(*b.source, 2), (std::vector<std::string>{std::string(64, 'y'), "z"}));
  EXPECT_EQ(b.source->stats().rejects, 1u);
  EXPECT_EQ(b.source->stats().messages, 2u);
}

TEST(UdpSource, KernelDropsFromSoRxqOvflAreExportedAsDeltas) {
  Built b = build("[source.u]\ntype = \"udp\"\nlisten = \"127.0.0.1:0\"\nrcvbuf = 4096\n");
  ASSERT_TRUE(b.source) << b.error;
  ASSERT_TRUE(b.source->start().ok());
  EXPECT_GE(as_udp(*b.source).rcvbuf_granted(), 2048u);
  TestSocket tx;
  const std::uint16_t port = as_udp(*b.source).local_port();
  std::size_t sent = 0;
  // Flood without reading: the tiny receive buffer overflows and the kernel counts the drops.
  for (int round = 0; round < 2; ++round) {
    for (int i = 0; i < 200; ++i, ++sent) ASSERT_TRUE(tx.send_to("127.0.0.1", port, std::string(1000, 'f')));
    // Drain, then one more datagram: it carries the cumulative drop count at its enqueue time.
    EXPECT_GT(drain(*b.source), 0u);
    ASSERT_TRUE(tx.send_to("127.0.0.1", port, "marker"));
    ++sent;
    EXPECT_EQ(poll_n(*b.source, 1).size(), 1u);
    const adapter::SourceStats s = b.source->stats();
    EXPECT_GT(s.drops, 0u);
    // Every datagram is either received or counted as dropped, exactly (the delta is not re-added).
    EXPECT_EQ(s.messages + s.drops, sent) << "round " << round;
  }
}

TEST(UdpSource, ReportsTheReceiveBufferTheKernelGranted) {
  Built b = build("[source.u]\ntype = \"udp\"\nlisten = \"127.0.0.1:0\"\nrcvbuf = 1073741824\n");
  ASSERT_TRUE(b.source) << b.error;
  ASSERT_TRUE(b.source->start().ok());
  const std::uint32_t granted = as_udp(*b.source).rcvbuf_granted();
  EXPECT_GT(granted, 0u);
  EXPECT_LT(granted, 1073741824u);  // capped by net.core.rmem_max: the start-up line warns
}

TEST(UdpSource, BuffersStayValidUntilReleaseAndPollStopsWhenAllSlotsAreHeld) {
  Built b = build("[source.u]\ntype = \"udp\"\nlisten = \"127.0.0.1:0\"\nrcvbuf = 1048576\n");
  ASSERT_TRUE(b.source) << b.error;
  ASSERT_TRUE(b.source->start().ok());
  TestSocket tx;
  const std::uint16_t port = as_udp(*b.source).local_port();
  const std::size_t total = udp::UdpSource::kSlots + 40;
  for (std::size_t i = 0; i < total; ++i) ASSERT_TRUE(tx.send_to("127.0.0.1", port, payload(i, 32)));

  std::vector<std::unique_ptr<Burst<>>> held;
  std::size_t got = 0;
  for (int spins = 0; got < udp::UdpSource::kSlots && spins < 5000; ++spins) {
    held.push_back(std::make_unique<Burst<>>());
    const std::size_t n = b.source->poll(*held.back());
    got += n;
    if (n == 0) {
      held.pop_back();
      std::this_thread::sleep_for(1ms);
    }
  }
  ASSERT_EQ(got, udp::UdpSource::kSlots);
  Burst<> extra;
  EXPECT_EQ(b.source->poll(extra), 0u);  // every slot is held by an unreleased burst
  // The first burst still holds its original bytes although later polls ran.
  std::size_t index = 0;
  for (const auto& burst : held) {
    for (const Message& m : *burst) EXPECT_EQ(m.text(), payload(index++, 32));
  }
  for (auto& burst : held) b.source->release(*burst);
  const auto rest = poll_n(*b.source, 40);
  ASSERT_EQ(rest.size(), 40u);
  EXPECT_EQ(rest.front(), payload(udp::UdpSource::kSlots, 32));
}

TEST(UdpSource, BadConfigurationIsReportedAtTheKey) {
  struct Case {
    const char* toml;
    const char* expect;
  };
  const Case cases[] = {
      {"listen = \"feed.example:1\"\n", "source.s.listen: expected a numeric IPv4 address"},
      {"listen = \"nonsense\"\n", "source.s.listen: expected host:port"},
      {"interface = \"127.0.0.1\"\n", "missing required key 'listen'"},
      {"listen = \"127.0.0.1:5000\"\ninterface = \"127.0.0.1\"\n", "'interface' applies to a multicast listen only"},
      {"listen = \"127.0.0.1:5000\"\nsource = \"10.0.0.1\"\n", "'source' applies to a multicast listen only"},
      {"listen = \"239.1.1.1:5000\"\ninterface = \"lo\"\n", "source.s.interface: expected a numeric IPv4 address"},
      {"listen = \"239.1.1.1:5000\"\nsource = \"x\"\n", "source.s.source: expected a numeric IPv4 address"},
      {"listen = \"239.1.1.1:5000\"\nmax_datagram = 10\n", "source.s.max_datagram"},
      {"listen = \"239.1.1.1:5000\"\nrcvbuf = -1\n", "source.s.rcvbuf"},
      {"listen = \"239.1.1.1:5000\"\nbogus = 1\n", "source.s.bogus"},
  };
  for (const Case& c : cases) {
    Built b = build(std::string("[source.s]\ntype = \"udp\"\n") + c.toml);
    EXPECT_NE(b.error.find(c.expect), std::string::npos) << c.toml << " -> " << b.error;
  }
  Built ok = build("[source.s]\ntype = \"udp\"\nlisten = \"239.1.1.1:5000\"\nsource = \"127.0.0.1\"\n");
  EXPECT_TRUE(ok.source) << ok.error;
  EXPECT_TRUE(ok.error.empty()) << ok.error;
}

TEST(UdpSource, SourceSpecificJoinReceivesFromTheNamedSource) {
  Built b = build("[source.s]\ntype = \"udp\"\nlisten = \"232.77.1.2:0\"\nsource = \"127.0.0.1\"\n");
  ASSERT_TRUE(b.source) << b.error;
  ASSERT_TRUE(b.source->start().ok());
  TestSocket tx;
  ASSERT_TRUE(tx.send_to("232.77.1.2", as_udp(*b.source).local_port(), "ssm"));
  EXPECT_EQ(poll_n(*b.source, 1), std::vector<std::string>{"ssm"});
}

// ---- sink ----------------------------------------------------------------------------------------
TEST(UdpSink, RawSendsOneDatagramPerMessageUnicast) {
  TestSocket rx;
  const std::uint16_t port = rx.bind_to("127.0.0.1");
  Built b = build("[sink.out]\ntype = \"udp\"\ndestination = \"127.0.0.1:" + std::to_string(port) + "\"\n");
  ASSERT_TRUE(b.sink) << b.error;
  ASSERT_TRUE(b.sink->start().ok());
  std::vector<std::string> payloads;
  for (std::size_t i = 0; i < 25; ++i) payloads.push_back(payload(i, 1 + i * 7));
  EXPECT_EQ(b.sink->send(burst_of(payloads)), payloads.size());
  for (const auto& p : payloads) EXPECT_EQ(rx.receive(), p);
  EXPECT_EQ(b.sink->stats().messages, payloads.size());
  EXPECT_EQ(as_udp(*b.sink).counters().packets, payloads.size());
  EXPECT_EQ(b.sink->stats().errors, 0u);
  b.sink->stop();
  EXPECT_EQ(rx.receive(false), "");  // raw framing has no end-of-session packet
}

TEST(UdpSink, RawDropsMessagesLargerThanAnIpv4Datagram) {
  TestSocket rx;
  const std::uint16_t port = rx.bind_to("127.0.0.1");
  Built b = build("[sink.out]\ntype = \"udp\"\ndestination = \"127.0.0.1:" + std::to_string(port) + "\"\n");
  ASSERT_TRUE(b.sink) << b.error;
  ASSERT_TRUE(b.sink->start().ok());
  const std::vector<std::string> payloads{"a", std::string(65508, 'x'), std::string(65507, 'y'), "b"};
  EXPECT_EQ(b.sink->send(burst_of(payloads)), payloads.size());
  EXPECT_EQ(rx.receive(), "a");
  EXPECT_EQ(rx.receive(), payloads[2]);  // the largest IPv4 UDP payload still goes out
  EXPECT_EQ(rx.receive(), "b");
  EXPECT_EQ(b.sink->stats().drops, 1u);
  EXPECT_EQ(b.sink->stats().messages, 3u);
  EXPECT_EQ(b.sink->stats().errors, 0u);
}

TEST(UdpSink, RawMulticastReachesAJoinedListenerThroughLoopback) {
  TestSocket rx;
  const std::uint16_t port = rx.bind_to("239.77.2.2");
  ASSERT_TRUE(rx.join("239.77.2.2"));
  Built b = build("[sink.out]\ntype = \"udp\"\ndestination = \"239.77.2.2:" + std::to_string(port) +
                  "\"\ninterface = \"127.0.0.1\"\nttl = 0\nloop = true\n");
  ASSERT_TRUE(b.sink) << b.error;
  ASSERT_TRUE(b.sink->start().ok());
  const std::vector<std::string> payloads{"one", "two", "three"};
  EXPECT_EQ(b.sink->send(burst_of(payloads)), 3u);
  for (const auto& p : payloads) EXPECT_EQ(rx.receive(), p);
}

struct Decoded {
  std::uint64_t sequence = 0;
  std::uint16_t count = 0;
  std::vector<std::string> messages;
  std::string bytes;
};

Decoded decode(const std::string& datagram) {
  Decoded d;
  mold::PacketView view;
  const auto err = mold::PacketView::parse(
      protocols::Bytes(reinterpret_cast<const std::byte*>(datagram.data()), datagram.size()), view);
  EXPECT_EQ(err, mold::PacketError::Ok) << "undecodable packet of " << datagram.size() << " bytes";
  if (err != mold::PacketError::Ok) return d;
  EXPECT_EQ(view.session_name().trimmed(), "TESTSESS");
  d.sequence = view.sequence();
  d.count = view.count();
  d.bytes = datagram;
  for (const mold::MessageBlock& m : view) {
    d.messages.emplace_back(reinterpret_cast<const char*>(m.data.data()), m.data.size());
  }
  return d;
}

std::string mold_sink_toml(std::uint16_t port, const std::string& extra = "") {
  return "[sink.out]\ntype = \"udp\"\ndestination = \"127.0.0.1:" + std::to_string(port) +
         "\"\nframing = \"moldudp64\"\nsession = \"TESTSESS\"\n" + extra;
}

TEST(UdpSink, MoldUdp64PacksMessagesIntoMtuSizedPacketsWithContiguousSequences) {
  TestSocket rx;
  const std::uint16_t port = rx.bind_to("127.0.0.1");
  Built b = build(mold_sink_toml(port, "mtu = 200\nheartbeat_interval = \"1h\"\n"));
  ASSERT_TRUE(b.sink) << b.error;
  ASSERT_TRUE(b.sink->start().ok());
  std::vector<std::string> all;
  for (int round = 0; round < 3; ++round) {
    std::vector<std::string> payloads;
    for (std::size_t i = 0; i < Burst<>::kCapacity; ++i) payloads.push_back(payload(all.size() + i, 5 + (i * 13) % 90));
    EXPECT_EQ(b.sink->send(burst_of(payloads)), payloads.size());
    b.sink->flush();
    all.insert(all.end(), payloads.begin(), payloads.end());
  }
  std::vector<std::string> got;
  std::uint64_t expect_seq = 1;
  std::size_t packets = 0;
  while (got.size() < all.size()) {
    const std::string datagram = rx.receive();
    ASSERT_FALSE(datagram.empty()) << "timed out after " << got.size() << " messages";
    EXPECT_LE(datagram.size(), 200u);
    const Decoded d = decode(datagram);
    ASSERT_GT(d.count, 0u);
    EXPECT_EQ(d.sequence, expect_seq);
    expect_seq += d.count;
    got.insert(got.end(), d.messages.begin(), d.messages.end());
    ++packets;
  }
  EXPECT_EQ(got, all);
  EXPECT_GT(packets, 3u);  // 200-byte packets cannot hold a burst each
  EXPECT_EQ(as_udp(*b.sink).next_sequence(), all.size() + 1);
  EXPECT_EQ(as_udp(*b.sink).counters().packets, packets);

  b.sink->stop();  // end of session, sequence = the next one
  const Decoded eos = decode(rx.receive());
  EXPECT_EQ(eos.count, mold::kEndOfSessionCount);
  EXPECT_EQ(eos.sequence, all.size() + 1);
  EXPECT_EQ(as_udp(*b.sink).counters().end_of_session, 1u);
}

TEST(UdpSink, MoldUdp64HeartbeatAfterIdleFromService) {
  TestSocket rx;
  const std::uint16_t port = rx.bind_to("127.0.0.1");
  Built b = build(mold_sink_toml(port, "heartbeat_interval = \"20ms\"\n"));
  ASSERT_TRUE(b.sink) << b.error;
  ASSERT_TRUE(b.sink->start().ok());
  const std::vector<std::string> payloads{"a", "bb", "ccc"};
  ASSERT_EQ(b.sink->send(burst_of(payloads)), 3u);
  const Decoded data = decode(rx.receive());
  EXPECT_EQ(data.messages, payloads);
  // Drive service() like a worker loop until a heartbeat went out (bounded).
  for (int i = 0; i < 5000 && as_udp(*b.sink).counters().heartbeats == 0; ++i) {
    (void)b.sink->service();
    std::this_thread::sleep_for(1ms);
  }
  ASSERT_GE(as_udp(*b.sink).counters().heartbeats, 1u);
  const Decoded hb = decode(rx.receive());
  EXPECT_EQ(hb.count, mold::kHeartbeatCount);
  EXPECT_EQ(hb.sequence, 4u);  // the next sequence number
  EXPECT_TRUE(hb.messages.empty());
}

TEST(UdpSink, MoldUdp64AnswersReRequestsFromTheRing) {
  TestSocket rx;
  const std::uint16_t port = rx.bind_to("127.0.0.1");
  Built b = build(mold_sink_toml(port, "mtu = 120\nheartbeat_interval = \"1h\"\nretransmit_listen = \"127.0.0.1:0\"\n"
                                       "retransmit_packets = 128\n"));
  ASSERT_TRUE(b.sink) << b.error;
  ASSERT_TRUE(b.sink->start().ok());
  const std::uint16_t rport = as_udp(*b.sink).retransmit_port();
  ASSERT_NE(rport, 0);
  // 20 bursts x 32 messages of 40 bytes: 2 per 120-byte packet -> 320 packets, more than the ring.
  std::vector<std::string> originals;  // packets as first received, by index
  std::size_t messages = 0;
  for (int round = 0; round < 20; ++round) {
    std::vector<std::string> payloads;
    for (std::size_t i = 0; i < Burst<>::kCapacity; ++i) payloads.push_back(payload(messages++, 40));
    ASSERT_EQ(b.sink->send(burst_of(payloads)), payloads.size());
    while (true) {
      std::string d = rx.receive(false);
      if (d.empty()) break;
      originals.push_back(std::move(d));
    }
  }
  ASSERT_EQ(originals.size(), 320u);

  TestSocket client;
  auto request = [&](std::uint64_t sequence, std::uint16_t count) {
    std::array<std::byte, mold::kRequestSize> buf{};
    const mold::Request r{mold::SessionName::from("TESTSESS"), sequence, count};
    EXPECT_EQ(mold::write_request(buf, r), mold::kRequestSize);
    const sockaddr_in to = TestSocket::addr("127.0.0.1", rport);
    sendto(client.fd(), buf.data(), buf.size(), 0, reinterpret_cast<const sockaddr*>(&to), sizeof(to));
  };
  auto serve_until = [&](auto done) {
    for (int i = 0; i < 5000 && !done(); ++i) {
      (void)b.sink->service();
      std::this_thread::sleep_for(1ms);
    }
  };
  // Messages 601..605 live in packets 300..302 (2 messages each: packet k holds 2k+1, 2k+2).
  request(601, 5);
  serve_until([&] { return as_udp(*b.sink).counters().rerequests_served == 1; });
  ASSERT_EQ(as_udp(*b.sink).counters().rerequests_served, 1u);
  EXPECT_EQ(client.receive(), originals[300]);
  EXPECT_EQ(client.receive(), originals[301]);
  EXPECT_EQ(client.receive(), originals[302]);
  EXPECT_EQ(client.receive(false), "");
  EXPECT_EQ(decode(originals[300]).sequence, 601u);

  // Message 3 was overwritten (the ring holds the last 128 packets); 10000 was never sent.
  request(3, 1);
  request(10000, 1);
  serve_until([&] { return as_udp(*b.sink).counters().rerequests_out_of_window == 2; });
  EXPECT_EQ(as_udp(*b.sink).counters().rerequests_out_of_window, 2u);
  // The oldest packet still held is answered.
  request(2 * (320 - 128) + 1, 1);
  serve_until([&] { return as_udp(*b.sink).counters().rerequests_served == 2; });
  EXPECT_EQ(client.receive(), originals[320 - 128]);

  // A short datagram and another session are malformed requests, not crashes.
  const sockaddr_in to = TestSocket::addr("127.0.0.1", rport);
  sendto(client.fd(), "short", 5, 0, reinterpret_cast<const sockaddr*>(&to), sizeof(to));
  std::array<std::byte, mold::kRequestSize> other{};
  ASSERT_EQ(mold::write_request(other, mold::Request{mold::SessionName::from("OTHER"), 601, 1}), mold::kRequestSize);
  sendto(client.fd(), other.data(), other.size(), 0, reinterpret_cast<const sockaddr*>(&to), sizeof(to));
  serve_until([&] { return as_udp(*b.sink).counters().rerequests_malformed == 2; });
  EXPECT_EQ(as_udp(*b.sink).counters().rerequests_malformed, 2u);
  EXPECT_EQ(b.sink->stats().errors, 0u);
}

TEST(UdpSink, MoldUdp64DropsMessagesThatCannotFitAPacket) {
  TestSocket rx;
  const std::uint16_t port = rx.bind_to("127.0.0.1");
  Built b = build(mold_sink_toml(port, "mtu = 100\n"));
  ASSERT_TRUE(b.sink) << b.error;
  ASSERT_TRUE(b.sink->start().ok());
  const std::vector<std::string> payloads{"ok", std::string(79, 'b'), std::string(78, 'c'), "end"};
  EXPECT_EQ(b.sink->send(burst_of(payloads)), payloads.size());
  EXPECT_EQ(b.sink->stats().drops, 1u);  // 79 + 2 + 20 > 100
  std::vector<std::string> got;
  while (got.size() < 3) {
    const std::string d = rx.receive();
    ASSERT_FALSE(d.empty());
    const Decoded p = decode(d);
    got.insert(got.end(), p.messages.begin(), p.messages.end());
  }
  EXPECT_EQ(got, (std::vector<std::string>{"ok", std::string(78, 'c'), "end"}));
}

TEST(UdpSink, OnlyTheOwningWorkersInstanceSends) {
  TestSocket rx;
  const std::uint16_t port = rx.bind_to("127.0.0.1");
  Built other = build(mold_sink_toml(port, "worker = 0\n"), /*worker=*/1, /*workers=*/2);
  ASSERT_TRUE(other.sink) << other.error;
  EXPECT_FALSE(as_udp(*other.sink).owner());
  ASSERT_TRUE(other.sink->start().ok());
  const std::vector<std::string> payloads{"x", "y"};
  EXPECT_EQ(other.sink->send(burst_of(payloads)), 2u);  // taken off the lane, not sent
  EXPECT_EQ(other.sink->stats().errors, 2u);
  EXPECT_EQ(other.sink->stats().messages, 0u);
  EXPECT_EQ(as_udp(*other.sink).counters().refused, 2u);
  EXPECT_EQ(other.sink->service(), 0u);
  other.sink->stop();
  EXPECT_EQ(rx.receive(false), "");

  Built owner = build(mold_sink_toml(port, "worker = 1\n"), /*worker=*/1, /*workers=*/2);
  ASSERT_TRUE(owner.sink) << owner.error;
  EXPECT_TRUE(as_udp(*owner.sink).owner());
}

TEST(UdpSink, BadConfigurationIsReportedAtTheKey) {
  struct Case {
    const char* toml;
    const char* expect;
  };
  const Case cases[] = {
      {"framing = \"raw\"\n", "missing required key 'destination'"},
      {"destination = \"host.example:1\"\n", "sink.s.destination: expected a numeric IPv4 address"},
      {"destination = \"127.0.0.1:0\"\n", "destination port must not be 0"},
      {"destination = \"127.0.0.1:9\"\nttl = 3\n", "'ttl' applies to a multicast destination only"},
      {"destination = \"127.0.0.1:9\"\nloop = false\n", "'loop' applies to a multicast destination only"},
      {"destination = \"127.0.0.1:9\"\ninterface = \"127.0.0.1\"\n", "'interface' applies to a multicast"},
      {"destination = \"239.1.1.1:9\"\nttl = 300\n", "sink.s.ttl"},
      {"destination = \"239.1.1.1:9\"\nframing = \"fix\"\n", "sink.s.framing"},
      {"destination = \"239.1.1.1:9\"\nsession = \"S\"\n", "'session' applies to framing = \"moldudp64\" only"},
      {"destination = \"239.1.1.1:9\"\nframing = \"moldudp64\"\nsession = \"ELEVENCHARS\"\n", "1 to 10 characters"},
      {"destination = \"239.1.1.1:9\"\nframing = \"moldudp64\"\nmtu = 10\n", "sink.s.mtu"},
      {"destination = \"239.1.1.1:9\"\nframing = \"moldudp64\"\nretransmit_listen = \"x:1\"\n",
       "sink.s.retransmit_listen"},
      {"destination = \"239.1.1.1:9\"\nframing = \"moldudp64\"\nretransmit_packets = 2\n", "sink.s.retransmit_packets"},
      {"destination = \"239.1.1.1:9\"\nworker = 3\n", "sink.s.worker"},
  };
  for (const Case& c : cases) {
    Built b = build(std::string("[sink.s]\ntype = \"udp\"\n") + c.toml);
    EXPECT_NE(b.error.find(c.expect), std::string::npos) << c.toml << " -> " << b.error;
  }
}

// ---- packet ring ---------------------------------------------------------------------------------
TEST(PacketRing, FindsThePacketHoldingASequenceAcrossWrapAround) {
  udp::PacketRing ring(4, 32);
  EXPECT_FALSE(ring.find(1).has_value());
  std::uint64_t seq = 1;
  for (std::uint32_t count : {3u, 1u, 2u, 5u, 1u, 4u}) {  // packets 0..5; the ring keeps 2..5
    auto slot = ring.next_slot();
    slot[0] = static_cast<std::byte>(count);
    ring.commit(seq, count, 1);
    seq += count;
  }
  EXPECT_EQ(ring.oldest(), 2u);
  EXPECT_EQ(ring.begin_sequence(), 5u);
  EXPECT_EQ(ring.end_sequence(), 17u);
  EXPECT_FALSE(ring.find(4).has_value());   // overwritten
  EXPECT_FALSE(ring.find(17).has_value());  // not sent yet
  EXPECT_EQ(ring.find(5), 2u);
  EXPECT_EQ(ring.find(6), 2u);
  EXPECT_EQ(ring.find(7), 3u);
  EXPECT_EQ(ring.find(11), 3u);
  EXPECT_EQ(ring.find(12), 4u);
  EXPECT_EQ(ring.find(13), 5u);
  EXPECT_EQ(ring.find(16), 5u);
  EXPECT_EQ(ring.packet(3)[0], std::byte{5});
  EXPECT_EQ(ring.packet(5).size(), 1u);
}

}  // namespace
