// MoldSession: in-order delivery, duplicates, gap detection with exact ranges, recovery from full,
// partial and out-of-order re-request replies, retries with exact backoff timestamps, give-up,
// no-recovery mode, store overflow (packets and bytes), heartbeats revealing gaps, session change,
// end of session, and a randomized lossy feed recovered through a simulated re-request server.
// Every message carries its own sequence number, so each delivery is checked against its bytes.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <new>
#include <deque>
#include <random>
#include <string>
#include <vector>

#include "protocols/mold_session.hpp"

// Counting global allocator: the steady-state test below asserts that the per-packet paths (in
// order, gap, store, recovery, retry, give-up) allocate nothing.
namespace {
std::atomic<bool> g_counting{false};
std::atomic<std::uint64_t> g_allocations{0};
void* counted(std::size_t n) {
  if (g_counting.load(std::memory_order_relaxed)) g_allocations.fetch_add(1, std::memory_order_relaxed);
  return std::malloc(n == 0 ? 1 : n);
}
}  // namespace
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
void* operator new(std::size_t n) {
  if (void* p = counted(n)) return p;
  throw std::bad_alloc();
}
void* operator new[](std::size_t n) {
  if (void* p = counted(n)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }
#pragma GCC diagnostic pop

namespace {

using namespace hypergate::protocols;
using namespace hypergate::protocols::mold;

// A packet of `count` 8-byte messages, each holding its own sequence number.
std::vector<std::byte> packet(std::uint64_t seq, std::uint16_t count, const std::string& session = "S1") {
  std::vector<std::byte> buf(kHeaderSize + count * (kBlockHeaderSize + 8));
  PacketBuilder b(MutableBytes{buf});
  b.start(SessionName::from(session), seq);
  for (std::uint64_t s = seq; s < seq + count; ++s) {
    const MutableBytes m = b.reserve(8);
    std::memcpy(m.data(), &s, 8);
  }
  const Bytes out = b.finish();
  return {out.begin(), out.end()};
}
std::vector<std::byte> heartbeat(std::uint64_t next, const std::string& session = "S1") {
  std::vector<std::byte> buf(kHeaderSize);
  EXPECT_EQ(write_heartbeat(MutableBytes{buf}, SessionName::from(session), next), kHeaderSize);
  return buf;
}
std::vector<std::byte> end_of_session(std::uint64_t next, const std::string& session = "S1") {
  std::vector<std::byte> buf(kHeaderSize);
  EXPECT_EQ(write_end_of_session(MutableBytes{buf}, SessionName::from(session), next), kHeaderSize);
  return buf;
}

struct Recorder : SessionEvents {
  std::vector<std::uint64_t> delivered;
  std::vector<Gap> gaps;
  std::vector<Gap> lost;
  std::vector<Request> requests;
  std::vector<std::pair<std::string, std::string>> changes;
  std::vector<std::uint64_t> ends;
  int ranges = 0;
  bool ordered = false;  // sequence order restarts with a new session
  std::uint64_t last = 0;

  void on_messages(MessageRange messages) override {
    ++ranges;
    EXPECT_FALSE(messages.empty());
    for (const MessageBlock m : messages) {
      std::uint64_t inside = 0;
      EXPECT_EQ(m.data.size(), 8u);
      std::memcpy(&inside, m.data.data(), 8);
      EXPECT_EQ(inside, m.sequence) << "message bytes do not match its sequence";
      if (ordered) {
        EXPECT_GT(m.sequence, last) << "delivery out of order";
      }
      ordered = true;
      last = m.sequence;
      delivered.push_back(m.sequence);
    }
  }
  void on_gap(const Gap& g) override { gaps.push_back(g); }
  void on_gap_lost(const Gap& g) override { lost.push_back(g); }
  void on_request(const Request& r) override { requests.push_back(r); }
  void on_session_change(const SessionName& from, const SessionName& to) override {
    changes.emplace_back(std::string(from.trimmed()), std::string(to.trimmed()));
    ordered = false;
  }
  void on_end_of_session(const SessionName&, std::uint64_t next) override { ends.push_back(next); }
};

std::vector<std::uint64_t> seqs(std::uint64_t first, std::uint64_t last) {
  std::vector<std::uint64_t> v;
  for (std::uint64_t s = first; s <= last; ++s) v.push_back(s);
  return v;
}

void feed(MoldSession& s, const std::vector<std::byte>& pkt, std::uint64_t now, Recorder& r) {
  ASSERT_EQ(s.on_datagram(Bytes{pkt}, now, r), PacketError::Ok);
}

MoldSession::Options opts() {
  MoldSession::Options o;
  o.retry_initial_ns = 1000;
  o.retry_max_ns = 3000;
  o.max_attempts = 4;
  return o;
}

TEST(MoldSession, InOrderIsDeliveredAtOnce) {
  MoldSession s(opts());
  Recorder r;
  feed(s, packet(1, 3), 0, r);
  feed(s, packet(4, 3), 0, r);
  feed(s, packet(7, 1), 0, r);
  EXPECT_EQ(r.delivered, seqs(1, 7));
  EXPECT_EQ(r.ranges, 3);  // one call per packet, not per message
  EXPECT_TRUE(r.gaps.empty());
  EXPECT_TRUE(r.requests.empty());
  EXPECT_EQ(s.next_sequence(), 8u);
  EXPECT_EQ(s.stats().messages_delivered, 7u);
  EXPECT_EQ(s.stats().packets, 3u);
  EXPECT_EQ(s.session().trimmed(), "S1");
}

TEST(MoldSession, DuplicatesAreSkippedAndCounted) {
  MoldSession s(opts());
  Recorder r;
  feed(s, packet(1, 3), 0, r);
  feed(s, packet(1, 3), 0, r);  // exact duplicate
  feed(s, packet(2, 4), 0, r);  // overlaps: 2,3 old, 4,5 new
  feed(s, packet(3, 1), 0, r);  // old
  EXPECT_EQ(r.delivered, seqs(1, 5));
  EXPECT_EQ(s.stats().duplicate_packets, 2u);
  EXPECT_EQ(s.stats().duplicate_messages, 3u + 2u + 1u);
  EXPECT_TRUE(r.gaps.empty());
}

TEST(MoldSession, MalformedDatagramsAreCounted) {
  MoldSession s(opts());
  Recorder r;
  auto pkt = packet(1, 2);
  pkt.pop_back();
  EXPECT_EQ(s.on_datagram(Bytes{pkt}, 0, r), PacketError::BlockOverrun);
  EXPECT_EQ(s.stats().malformed, 1u);
  EXPECT_TRUE(r.delivered.empty());
  EXPECT_FALSE(s.has_session());
}

TEST(MoldSession, GapThenFullRecovery) {
  MoldSession s(opts());
  Recorder r;
  feed(s, packet(1, 3), 100, r);
  feed(s, packet(7, 3), 200, r);
  ASSERT_EQ(r.gaps.size(), 1u);
  EXPECT_EQ(r.gaps[0], (Gap{4, 6}));
  ASSERT_EQ(r.requests.size(), 1u);
  EXPECT_EQ(r.requests[0], (Request{SessionName::from("S1"), 4, 3}));
  EXPECT_EQ(r.delivered, seqs(1, 3));
  EXPECT_EQ(s.stored_packets(), 1u);
  EXPECT_EQ(s.pending_gaps(), 1u);
  EXPECT_EQ(s.pending_gap(0), (Gap{4, 6}));
  EXPECT_EQ(s.next_timer_ns(), 1200u);

  feed(s, packet(4, 3), 300, r);  // the re-request reply
  EXPECT_EQ(r.delivered, seqs(1, 9));
  EXPECT_EQ(s.pending_gaps(), 0u);
  EXPECT_EQ(s.stored_packets(), 0u);
  EXPECT_EQ(s.stored_bytes(), 0u);
  EXPECT_EQ(s.stats().gaps, 1u);
  EXPECT_EQ(s.stats().gap_messages, 3u);
  EXPECT_EQ(s.stats().recovered_messages, 3u);
  EXPECT_EQ(s.next_timer_ns(), UINT64_MAX);
  s.on_timer(1'000'000, r);  // nothing left to retry
  EXPECT_EQ(r.requests.size(), 1u);
  EXPECT_TRUE(r.lost.empty());

  feed(s, packet(10, 2), 400, r);  // and live data flows again
  EXPECT_EQ(r.delivered, seqs(1, 11));
}

TEST(MoldSession, PartialRepliesShrinkTheGap) {
  MoldSession s(opts());
  Recorder r;
  feed(s, packet(1, 3), 0, r);
  feed(s, packet(10, 3), 0, r);
  EXPECT_EQ(r.gaps, (std::vector<Gap>{{4, 9}}));
  feed(s, packet(4, 2), 0, r);
  EXPECT_EQ(r.delivered, seqs(1, 5));
  ASSERT_EQ(s.pending_gaps(), 1u);
  EXPECT_EQ(s.pending_gap(0), (Gap{6, 9}));
  feed(s, packet(6, 4), 0, r);
  EXPECT_EQ(r.delivered, seqs(1, 12));
  EXPECT_EQ(s.pending_gaps(), 0u);
  EXPECT_EQ(s.stats().recovered_messages, 6u);
}

TEST(MoldSession, OutOfOrderRepliesAreStoredThenDrained) {
  MoldSession s(opts());
  Recorder r;
  feed(s, packet(1, 3), 0, r);
  feed(s, packet(10, 3), 0, r);
  feed(s, packet(7, 3), 0, r);  // second half of the gap first
  EXPECT_EQ(r.delivered, seqs(1, 3));
  ASSERT_EQ(s.pending_gaps(), 1u);
  EXPECT_EQ(s.pending_gap(0), (Gap{4, 6}));
  EXPECT_EQ(s.stored_packets(), 2u);
  feed(s, packet(7, 3), 0, r);  // a duplicate of stored data is not stored twice
  EXPECT_EQ(s.stored_packets(), 2u);
  EXPECT_EQ(s.stats().duplicate_packets, 1u);
  feed(s, packet(4, 3), 0, r);
  EXPECT_EQ(r.delivered, seqs(1, 12));
  EXPECT_EQ(s.stored_packets(), 0u);
}

TEST(MoldSession, AReplyInTheMiddleSplitsTheGap) {
  MoldSession s(opts());
  Recorder r;
  feed(s, packet(1, 3), 0, r);
  feed(s, packet(13, 1), 0, r);
  feed(s, packet(7, 2), 0, r);
  ASSERT_EQ(s.pending_gaps(), 2u);
  EXPECT_EQ(s.pending_gap(0), (Gap{4, 6}));
  EXPECT_EQ(s.pending_gap(1), (Gap{9, 12}));
  // The retry asks only for what is still missing, per part.
  r.requests.clear();
  s.on_timer(1000, r);
  EXPECT_EQ(r.requests, (std::vector<Request>{{SessionName::from("S1"), 4, 3}, {SessionName::from("S1"), 9, 4}}));
  feed(s, packet(9, 4), 0, r);
  feed(s, packet(4, 3), 0, r);
  EXPECT_EQ(r.delivered, seqs(1, 13));
}

TEST(MoldSession, RetriesBackOffExponentiallyThenGiveUp) {
  MoldSession s(opts());  // initial 1000 ns, cap 3000 ns, 4 attempts
  Recorder r;
  feed(s, packet(1, 3), 0, r);
  feed(s, packet(7, 3), 100, r);
  std::vector<std::uint64_t> request_times{100};
  ASSERT_EQ(r.requests.size(), 1u);
  // Attempt 1 at 100 (+1000), attempt 2 at 1100 (+2000), attempt 3 at 3100 (+3000 capped),
  // attempt 4 at 6100 (+3000), give-up at 9100.
  for (std::uint64_t t = 100; t <= 9100; t += 1) {
    const std::size_t before = r.requests.size();
    if (t >= s.next_timer_ns()) s.on_timer(t, r);
    if (r.requests.size() != before) request_times.push_back(t);
    if (!r.lost.empty()) {
      EXPECT_EQ(t, 9100u);
      break;
    }
  }
  EXPECT_EQ(request_times, (std::vector<std::uint64_t>{100, 1100, 3100, 6100}));
  for (const Request& q : r.requests) EXPECT_EQ(q, (Request{SessionName::from("S1"), 4, 3}));
  ASSERT_EQ(r.lost.size(), 1u);
  EXPECT_EQ(r.lost[0], (Gap{4, 6}));
  EXPECT_EQ(r.delivered, (std::vector<std::uint64_t>{1, 2, 3, 7, 8, 9}));  // skipped to the stored data
  EXPECT_EQ(s.stats().gaps_lost, 1u);
  EXPECT_EQ(s.stats().lost_messages, 3u);
  EXPECT_EQ(s.stats().requests, 4u);
  EXPECT_EQ(s.pending_gaps(), 0u);
  EXPECT_EQ(s.stored_packets(), 0u);
  // A late reply for the lost range is old now.
  feed(s, packet(4, 3), 9200, r);
  EXPECT_EQ(r.delivered.back(), 9u);
  EXPECT_EQ(s.stats().duplicate_packets, 1u);
}

TEST(MoldSession, GiveUpTimestampsAreExactAtTheBoundary) {
  MoldSession s(opts());
  Recorder r;
  feed(s, packet(1, 1), 0, r);
  feed(s, packet(3, 1), 500, r);  // gap [2,2] at t=500
  s.on_timer(1499, r);
  EXPECT_EQ(r.requests.size(), 1u);
  s.on_timer(1500, r);
  EXPECT_EQ(r.requests.size(), 2u);
  s.on_timer(3499, r);
  EXPECT_EQ(r.requests.size(), 2u);
  s.on_timer(3500, r);
  EXPECT_EQ(r.requests.size(), 3u);
  s.on_timer(6500, r);
  EXPECT_EQ(r.requests.size(), 4u);
  s.on_timer(9499, r);
  EXPECT_TRUE(r.lost.empty());
  s.on_timer(9500, r);
  EXPECT_EQ(r.lost, (std::vector<Gap>{{2, 2}}));
  EXPECT_EQ(r.delivered, (std::vector<std::uint64_t>{1, 3}));
}

TEST(MoldSession, TwoGapsGivenUpTogetherDeliverEverythingBetween) {
  auto o = opts();
  o.max_attempts = 1;
  MoldSession s(o);
  Recorder r;
  feed(s, packet(1, 1), 0, r);
  feed(s, packet(4, 2), 0, r);  // gap [2,3]
  feed(s, packet(8, 1), 0, r);  // gap [6,7]
  EXPECT_EQ(r.gaps, (std::vector<Gap>{{2, 3}, {6, 7}}));
  s.on_timer(1000, r);
  EXPECT_EQ(r.lost, (std::vector<Gap>{{2, 3}, {6, 7}}));
  EXPECT_EQ(r.delivered, (std::vector<std::uint64_t>{1, 4, 5, 8}));
}

TEST(MoldSession, WithoutRecoveryGapsAreGivenUpAtOnce) {
  auto o = opts();
  o.recovery = false;
  MoldSession s(o);
  Recorder r;
  feed(s, packet(1, 2), 0, r);
  feed(s, packet(5, 2), 0, r);
  EXPECT_EQ(r.gaps, (std::vector<Gap>{{3, 4}}));
  EXPECT_EQ(r.lost, (std::vector<Gap>{{3, 4}}));
  EXPECT_TRUE(r.requests.empty());
  EXPECT_EQ(r.delivered, (std::vector<std::uint64_t>{1, 2, 5, 6}));
  EXPECT_EQ(s.stored_packets(), 0u);
  EXPECT_EQ(s.next_timer_ns(), UINT64_MAX);
}

TEST(MoldSession, RequestsAreCappedPerRequest) {
  auto o = opts();
  o.max_request_count = 4;
  o.max_requests_per_round = 2;
  MoldSession s(o);
  Recorder r;
  feed(s, packet(1, 1), 0, r);
  feed(s, packet(12, 1), 0, r);  // gap [2,11] = 10 messages
  EXPECT_EQ(r.requests, (std::vector<Request>{{SessionName::from("S1"), 2, 4}, {SessionName::from("S1"), 6, 4}}));
  feed(s, packet(2, 8), 0, r);
  r.requests.clear();
  s.on_timer(1000, r);
  EXPECT_EQ(r.requests, (std::vector<Request>{{SessionName::from("S1"), 10, 2}}));
}

TEST(MoldSession, StoreOverflowByPacketsIsCountedAndRecovered) {
  auto o = opts();
  o.store_packets = 2;
  MoldSession s(o);
  Recorder r;
  feed(s, packet(1, 3), 0, r);
  feed(s, packet(10, 3), 0, r);
  feed(s, packet(13, 3), 0, r);
  feed(s, packet(16, 3), 0, r);  // no room: counted, its messages become missing
  EXPECT_EQ(s.stats().store_overflows, 1u);
  EXPECT_EQ(s.stored_packets(), 2u);
  ASSERT_EQ(s.pending_gaps(), 2u);
  EXPECT_EQ(s.pending_gap(0), (Gap{4, 9}));
  EXPECT_EQ(s.pending_gap(1), (Gap{16, 18}));
  EXPECT_EQ(r.gaps, (std::vector<Gap>{{4, 9}, {16, 18}}));
  feed(s, packet(4, 6), 0, r);
  EXPECT_EQ(r.delivered, seqs(1, 15));
  feed(s, packet(16, 3), 0, r);
  EXPECT_EQ(r.delivered, seqs(1, 18));
}

TEST(MoldSession, StoreOverflowByBytes) {
  auto o = opts();
  const std::size_t one = packet(10, 3).size();
  o.store_bytes = 2 * one + one / 2;  // room for two such packets, not three
  MoldSession s(o);
  Recorder r;
  feed(s, packet(1, 3), 0, r);
  feed(s, packet(10, 3), 0, r);
  feed(s, packet(13, 3), 0, r);
  EXPECT_EQ(s.stored_bytes(), 2 * one);
  feed(s, packet(16, 3), 0, r);
  EXPECT_EQ(s.stats().store_overflows, 1u);
  feed(s, packet(4, 6), 0, r);
  EXPECT_EQ(r.delivered, seqs(1, 15));
  EXPECT_EQ(s.stored_bytes(), 0u);
}

TEST(MoldSession, StoreCompactsWhenFragmented) {
  auto o = opts();
  const std::size_t one = packet(1, 1).size();
  o.store_bytes = 3 * one;  // exactly three one-message packets
  MoldSession s(o);
  Recorder r;
  feed(s, packet(1, 1), 0, r);
  feed(s, packet(3, 1), 0, r);  // gap [2]   stored A
  feed(s, packet(5, 1), 0, r);  // gap [4]   stored B
  feed(s, packet(7, 1), 0, r);  // gap [6]   stored C: the arena is full
  feed(s, packet(2, 1), 0, r);  // releases A
  EXPECT_EQ(r.delivered, seqs(1, 3));
  feed(s, packet(9, 1), 0, r);  // gap [8]; needs compaction to fit after B, C
  EXPECT_EQ(s.stats().store_overflows, 0u);
  EXPECT_EQ(s.stored_packets(), 3u);
  feed(s, packet(4, 1), 0, r);
  feed(s, packet(6, 1), 0, r);
  feed(s, packet(8, 1), 0, r);
  EXPECT_EQ(r.delivered, seqs(1, 9));
}

TEST(MoldSession, HeartbeatsRevealGapsButDeliverNothing) {
  MoldSession s(opts());
  Recorder r;
  feed(s, packet(1, 3), 0, r);
  feed(s, heartbeat(4), 0, r);
  EXPECT_TRUE(r.gaps.empty());
  feed(s, heartbeat(6), 0, r);  // messages 4 and 5 were sent and we missed them
  EXPECT_EQ(r.gaps, (std::vector<Gap>{{4, 5}}));
  EXPECT_EQ(r.requests, (std::vector<Request>{{SessionName::from("S1"), 4, 2}}));
  feed(s, heartbeat(6), 0, r);
  EXPECT_EQ(r.gaps.size(), 1u);
  feed(s, packet(4, 2), 0, r);
  EXPECT_EQ(r.delivered, seqs(1, 5));
  EXPECT_EQ(s.stats().heartbeats, 3u);
}

TEST(MoldSession, FirstSequenceRules) {
  {
    MoldSession s(opts());  // expects 1
    Recorder r;
    feed(s, packet(5, 1), 0, r);
    EXPECT_EQ(r.gaps, (std::vector<Gap>{{1, 4}}));
    EXPECT_TRUE(r.delivered.empty());
  }
  {
    auto o = opts();
    o.first_sequence = 0;  // adopt
    MoldSession s(o);
    Recorder r;
    feed(s, packet(500, 2), 0, r);
    EXPECT_TRUE(r.gaps.empty());
    EXPECT_EQ(r.delivered, (std::vector<std::uint64_t>{500, 501}));
  }
}

TEST(MoldSession, SessionChangeGivesUpTheOldSessionAndRestarts) {
  MoldSession s(opts());
  Recorder r;
  feed(s, packet(1, 3, "OLD"), 0, r);
  feed(s, packet(6, 1, "OLD"), 0, r);  // gap [4,5] pending
  feed(s, packet(1, 2, "NEW"), 0, r);
  EXPECT_EQ(r.changes, (std::vector<std::pair<std::string, std::string>>{{"OLD", "NEW"}}));
  EXPECT_EQ(r.lost, (std::vector<Gap>{{4, 5}}));
  EXPECT_EQ(r.delivered, (std::vector<std::uint64_t>{1, 2, 3, 1, 2}));  // OLD 1..3, then NEW 1..2
  EXPECT_EQ(s.session().trimmed(), "NEW");
  EXPECT_EQ(s.stored_packets(), 0u);
  EXPECT_EQ(s.pending_gaps(), 0u);
  EXPECT_EQ(s.next_sequence(), 3u);
  EXPECT_EQ(s.stats().session_changes, 1u);
}

TEST(MoldSession, EndOfSessionIsReportedOnce) {
  MoldSession s(opts());
  Recorder r;
  feed(s, packet(1, 3), 0, r);
  feed(s, end_of_session(4), 0, r);
  feed(s, end_of_session(4), 0, r);
  EXPECT_EQ(r.ends, (std::vector<std::uint64_t>{4}));
  EXPECT_TRUE(s.ended());
  EXPECT_EQ(s.stats().end_of_session, 2u);
  EXPECT_TRUE(r.gaps.empty());
}

TEST(MoldSession, EndOfSessionAheadRevealsAGap) {
  MoldSession s(opts());
  Recorder r;
  feed(s, packet(1, 3), 0, r);
  feed(s, end_of_session(7), 0, r);
  EXPECT_EQ(r.gaps, (std::vector<Gap>{{4, 6}}));
  EXPECT_EQ(r.ends, (std::vector<std::uint64_t>{7}));
  feed(s, packet(4, 3), 0, r);
  EXPECT_EQ(r.delivered, seqs(1, 6));
}

// A lossy, reordering, duplicating network and a re-request server that answers (sometimes partially,
// sometimes not at all) from the full packet list: everything is delivered exactly once, in order.
TEST(MoldSession, RandomLossyFeedIsRecoveredExactly) {
  for (std::uint32_t seed = 1; seed <= 20; ++seed) {
    std::mt19937 rng(seed);
    std::vector<std::vector<std::byte>> all;
    std::uint64_t seq = 1;
    while (seq < 3000) {
      const auto n = static_cast<std::uint16_t>(1 + rng() % 7);
      all.push_back(packet(seq, n));
      seq += n;
    }
    const std::uint64_t total = seq - 1;
    auto o = opts();
    o.store_packets = 64;
    o.max_attempts = 50;
    o.max_request_count = 5;
    MoldSession s(o);
    struct Server : Recorder {
      std::vector<Request> inbox;
      void on_request(const Request& q) override {
        Recorder::on_request(q);
        inbox.push_back(q);
      }
    } r;
    std::deque<std::vector<std::byte>> net;
    std::uint64_t now = 0;
    std::size_t next_live = 0;
    while (r.delivered.size() < total && now < 10'000'000) {
      now += 100;
      if (next_live < all.size()) {
        const auto& p = all[next_live++];
        const unsigned roll = rng() % 100;
        if (roll >= 10) net.push_back(p);                  // 10% lost
        if (roll < 5) net.push_back(p);                    // 5% duplicated
        if (roll >= 95 && net.size() > 1) std::swap(net.back(), net[net.size() - 2]);  // reordered
      } else {
        feed(s, heartbeat(total + 1), now, r);
      }
      for (const Request& q : r.inbox) {  // answer from the full list, a random subset of packets
        for (const auto& p : all) {
          PacketView v;
          ASSERT_EQ(PacketView::parse(Bytes{p}, v), PacketError::Ok);
          if (v.next_sequence() <= q.sequence || v.sequence() >= q.sequence + q.count) continue;
          if (rng() % 100 < 70) net.push_back(p);
        }
      }
      r.inbox.clear();
      while (net.size() > (rng() % 2)) {  // sometimes one packet waits a tick (reordering)
        feed(s, net.front(), now, r);
        net.pop_front();
      }
      s.on_timer(now, r);
    }
    ASSERT_EQ(r.delivered, seqs(1, total)) << "seed " << seed << " delivered " << r.delivered.size() << " of "
                                           << total << " next " << s.next_sequence() << " high "
                                           << s.high_sequence() << " pending " << s.pending_gaps() << " stored "
                                           << s.stored_packets() << " lost " << r.lost.size() << " overflow "
                                           << s.stats().store_overflows << " now " << now;
    EXPECT_TRUE(r.lost.empty());
    EXPECT_EQ(s.pending_gaps(), 0u);
  }
}

struct CountingEvents : SessionEvents {
  std::uint64_t messages = 0;
  std::uint64_t requests = 0;
  std::uint64_t lost = 0;
  void on_messages(MessageRange r) override {
    for (const MessageBlock m : r) messages += m.data.size() == 8 ? 1 : 0;
  }
  void on_request(const Request&) override { ++requests; }
  void on_gap_lost(const Gap&) override { ++lost; }
};

TEST(MoldSession, NoAllocationPerPacket) {
  std::vector<std::vector<std::byte>> pkts;
  for (std::uint64_t seq = 1; seq <= 3000; seq += 3) pkts.push_back(packet(seq, 3));
  auto o = opts();
  o.store_packets = 64;
  o.max_attempts = 2;
  MoldSession s(o);
  CountingEvents ev;
  std::uint64_t now = 0;
  g_allocations = 0;
  g_counting = true;
  for (std::size_t i = 0; i < pkts.size(); ++i) {
    now += 10;
    if (i % 50 == 7) continue;  // lost live packet: gap, store, requests
    ASSERT_EQ(s.on_datagram(Bytes{pkts[i]}, now, ev), PacketError::Ok);
    if (i % 50 == 9 && i % 100 == 9) (void)s.on_datagram(Bytes{pkts[i - 2]}, now, ev);  // recovered
    s.on_timer(now, ev);
    if (i % 50 == 30) {  // the unrecovered ones are given up
      now += 100'000;
      s.on_timer(now, ev);
      now += 100'000;
      s.on_timer(now, ev);
    }
  }
  g_counting = false;
  EXPECT_EQ(g_allocations.load(), 0u);
  EXPECT_GT(ev.requests, 0u);
  EXPECT_GT(ev.lost, 0u);
  EXPECT_GT(s.stats().recovered_messages, 0u);
  EXPECT_EQ(ev.messages + s.stats().lost_messages, 3000u);
}

}  // namespace
