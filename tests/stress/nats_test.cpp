// The `nats` source and sink under real threads and a real nats-server (run under TSan by scripts/test.sh).
// The adapters are built through the Registry from TOML as the gateway builds them; the test thread is
// their owning worker (start/poll/release/stop, start/send/flush/service/stop) while libnats' threads,
// a publisher or subscriber thread on its own connection, the JetStream helper thread and a thread
// calling stats() all run at once.
//  (1) source, core NATS: a publisher thread publishes on five subjects (three subscriptions, so three
//      libnats delivery threads feed three SPSC queues) while the test thread polls; every message is
//      accounted for (received + counted overflow == published), per-subject order holds, no payload is
//      corrupted, the key is the subject's last token. Also with queue_capacity = 16 and a slow poller,
//      so overflow happens and is counted exactly.
//  (2) sink, core NATS: bursts of TobUpdates (and ITCH-shaped messages that publish = "updates" filters)
//      while a libnats subscriber on another connection counts and decodes them and a thread calls
//      stats(); published == received, counters consistent after stop().
//  (3) JetStream source, deliver = "all": started before the stream exists (the helper thread retries;
//      a JetStream `nats` sink on another thread then creates the stream and publishes), and started while
//      the server is down, then the server restarted twice; every stored update arrives once, in order;
//      stop() joins the helper thread, also while it is still retrying.
// nats-server must be installed (Debian package nats-server): a missing binary FAILS the test.
// Every wait polls a condition with a deadline (a hang guard); nothing is timed.
#include <nats/nats.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "../nats_server.hpp"
#include "hypergate/adapter/registry.hpp"
#include "hypergate/config/config.hpp"
#include "market/tob_update.hpp"
#include "nats/nats_sink.hpp"
#include "nats/nats_source.hpp"

namespace {

using namespace hypergate;
using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;
using hypergate::test::free_port;
using hypergate::test::kNatsServerBinary;
using hypergate::test::NatsServer;
using hypergate::test::NatsServerOptions;

/// Polls `cond` until it holds (true) or `limit` passes (false), running `body` between checks (the
/// worker's poll loop) or sleeping 5 ms when there is none. A hang guard, not a timing check.
template <class Cond, class Body>
bool until(Cond cond, std::chrono::milliseconds limit, Body body) {
  const auto deadline = Clock::now() + limit;
  while (!cond()) {
    if (Clock::now() >= deadline) return false;
    body();
  }
  return true;
}
template <class Cond>
bool until(Cond cond, std::chrono::milliseconds limit) {
  return until(cond, limit, [] { std::this_thread::sleep_for(5ms); });
}

/// A source or sink built from one TOML section through the Registry, as the gateway builds it.
struct Built {
  std::unique_ptr<config::Document> doc;
  std::unique_ptr<adapter::Source> source;
  std::unique_ptr<adapter::Sink> sink;
};

Built build(const std::string& toml, bool is_sink) {
  Built b;
  Result<std::unique_ptr<config::Document>> doc = config::Document::parse(toml, "nats_stress.toml");
  EXPECT_TRUE(doc.ok());
  if (!doc.ok()) return b;
  b.doc = std::move(doc).value();
  std::vector<config::Section> secs = b.doc->instances(is_sink ? "sink" : "source");
  EXPECT_EQ(secs.size(), 1u);
  if (secs.empty()) return b;
  config::Section& s = secs[0];
  adapter::Context ctx;
  ctx.name = is_sink ? "out" : "in";
  const std::string type = s.string("type", "");
  if (is_sink) {
    const adapter::SinkFactory* f = adapter::Registry::global().sink(type);
    EXPECT_NE(f, nullptr);
    if (f == nullptr) return b;
    Result<std::unique_ptr<adapter::Sink>> made = (*f)(s, ctx);
    if (made.ok()) b.sink = std::move(made).value();
  } else {
    const adapter::SourceFactory* f = adapter::Registry::global().source(type);
    EXPECT_NE(f, nullptr);
    if (f == nullptr) return b;
    Result<std::unique_ptr<adapter::Source>> made = (*f)(s, ctx);
    if (made.ok()) b.source = std::move(made).value();
  }
  s.finish();
  EXPECT_EQ(b.doc->diagnostics().format(), "");
  return b;
}

/// start() succeeded, or the failure with its message.
template <class Adapter>
::testing::AssertionResult started(Adapter& a) {
  Result<void> r = a.start();
  if (r.ok()) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "start(): " << r.error().message;
}

/// Calls stats() from its own thread until destroyed, checking that the counters only grow.
template <class Adapter>
class StatsReader {
 public:
  explicit StatsReader(const Adapter& a)
      : thread_([this, &a] {
          std::uint64_t last_messages = 0;
          while (!stop_.load(std::memory_order_acquire)) {  // pairs with the release store in the destructor
            const auto s = a.stats();
            if (s.messages < last_messages) regressions_.fetch_add(1, std::memory_order_relaxed);
            last_messages = s.messages;
            reads_.fetch_add(1, std::memory_order_relaxed);
            std::this_thread::sleep_for(100us);
          }
        }) {}
  ~StatsReader() { join(); }
  void join() {
    stop_.store(true, std::memory_order_release);  // pairs with the acquire load in the reader loop
    if (thread_.joinable()) thread_.join();
  }
  [[nodiscard]] std::uint64_t regressions() const { return regressions_.load(std::memory_order_relaxed); }
  [[nodiscard]] std::uint64_t reads() const { return reads_.load(std::memory_order_relaxed); }

 private:
  std::atomic<bool> stop_{false};
  std::atomic<std::uint64_t> regressions_{0};
  std::atomic<std::uint64_t> reads_{0};
  std::thread thread_;  // last: starts after the atomics above exist
};

class NatsStress : public ::testing::Test {
 public:  // the helpers below drive a fixture's server
  void SetUp() override {
    // Never a skip: the stress suite must prove these adapters under TSan on every run.
    ASSERT_EQ(access(kNatsServerBinary.c_str(), X_OK), 0)
        << kNatsServerBinary << " is missing: install the Debian package nats-server (apt-get install nats-server)";
    char tmpl[] = "/tmp/hg_nats_stress_XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    port_ = free_port();
  }
  void TearDown() override {
    if (server_) server_->stop();  // SIGTERM and reap
    server_.reset();
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  /// Starts (or restarts, same port and store) the server.
  void start_server(bool jetstream) {
    if (!server_) {
      server_ = std::make_unique<NatsServer>(
          NatsServerOptions{.port = port_, .store = jetstream ? dir_ + "/js" : "", .log = dir_ + "/server.log"});
    }
    ASSERT_TRUE(server_->start()) << "nats-server did not accept on port " << port_ << "; log:\n"
                                  << server_->log_tail();
  }
  [[nodiscard]] std::string url() const { return "nats://127.0.0.1:" + std::to_string(port_); }
  /// A plain libnats connection to the server (the test's publisher or subscriber).
  natsConnection* connect_plain() {
    natsConnection* nc = nullptr;
    const natsStatus s = natsConnection_ConnectTo(&nc, url().c_str());
    EXPECT_EQ(s, NATS_OK) << natsStatus_GetText(s);
    return s == NATS_OK ? nc : nullptr;
  }

  std::string dir_;
  std::uint16_t port_ = 0;
  std::unique_ptr<NatsServer> server_;
};

// ---- (1) core source ------------------------------------------------------------------------------

// Five subjects over three subscriptions: "st.a.*" and "st.b.*" carry two subjects each.
const std::array<std::string, 5> kSubjects{"st.a.x", "st.a.y", "st.b.x", "st.b.y", "st.c.z"};
const std::array<std::string, 3> kProbeSubjects{"st.a.probe", "st.b.probe", "st.c.probe"};
constexpr std::uint32_t kMagic = 0x4E415453;  // "NATS"
constexpr std::uint32_t kProbeMagic = 0x50524F42;

/// The published payload: which subject, its per-subject sequence, and bytes derived from both.
struct SourcePayload {
  std::uint32_t magic = kMagic;
  std::uint32_t subject = 0;
  std::uint64_t seq = 0;  // per subject, from 1
  std::array<std::uint64_t, 3> check{};
};
static_assert(sizeof(SourcePayload) == 40, "4 + 4 + 8 + 24, no padding");

std::array<std::uint64_t, 3> check_words(std::uint32_t subject, std::uint64_t seq) {
  const std::uint64_t x = (seq * 0x9E3779B97F4A7C15ull) ^ (std::uint64_t{subject} << 56);
  return {x, ~x, x * 31 + 7};
}

struct SourceRun {
  std::uint64_t published = 0;  // probes excluded (a probe sent before the server knew a SUB is lost)
  std::uint64_t received = 0;   // probes excluded
  std::uint64_t probes_received = 0;
  std::uint64_t corrupt = 0;
  std::uint64_t out_of_order = 0;
  std::uint64_t gaps = 0;  // per-subject sequence jumps (overflow)
  std::uint64_t lane_sequence_regressions = 0;
  adapter::SourceStats stats;
  nats::NatsClientCounters client;
};

/// Publishes `per_subject` messages on each of kSubjects from a publisher thread while the test thread
/// polls the source; `slow` = queue_capacity 16 and a poller that pauses, so the queues overflow.
SourceRun run_core_source(NatsStress& t, natsConnection* pub_nc, std::uint64_t per_subject, bool slow) {
  SourceRun run;
  const std::string toml = "[source.in]\ntype = \"nats\"\nservers = [\"" + t.url() +
                           "\"]\nsubjects = [\"st.a.*\", \"st.b.*\", \"st.c.*\"]\nqueue_capacity = " +
                           (slow ? "16" : "65536") +
                           "\n"
                           "max_pending_messages = 1048576\n";  // libnats itself never drops here
  Built b = build(toml, false);
  if (b.source == nullptr) {
    ADD_FAILURE() << "no source built";
    return run;
  }
  adapter::Source& src = *b.source;
  auto* nsrc = dynamic_cast<nats::NatsSource*>(&src);
  EXPECT_NE(nsrc, nullptr);
  if (const ::testing::AssertionResult ok = started(src); !ok) {
    ADD_FAILURE() << ok.message();
    return run;
  }
  StatsReader<adapter::Source> reader(src);

  std::array<std::uint64_t, kSubjects.size()> last{};  // last per-subject sequence seen
  std::map<std::uint16_t, std::uint64_t> last_lane_seq;  // Message::sequence per subscription, by subject prefix
  std::array<bool, kProbeSubjects.size()> probe_seen{};
  Burst<> burst;
  auto poll_once = [&] {
    burst.clear();
    const std::size_t n = src.poll(burst);
    EXPECT_EQ(n, burst.size());
    for (const Message& m : burst) {
      if (m.size != sizeof(SourcePayload)) {
        ++run.received;
        ++run.corrupt;
        continue;
      }
      SourcePayload p;
      std::memcpy(&p, m.data, sizeof p);
      if (p.magic == kProbeMagic) {
        if (p.subject < probe_seen.size() && m.key() == "probe") probe_seen[p.subject] = true;
        ++run.probes_received;
        continue;
      }
      ++run.received;
      if (p.magic != kMagic || p.subject >= kSubjects.size() || p.check != check_words(p.subject, p.seq) ||
          m.key() != std::string_view(kSubjects[p.subject]).substr(kSubjects[p.subject].rfind('.') + 1)) {
        ++run.corrupt;
        continue;
      }
      if (p.seq <= last[p.subject]) ++run.out_of_order;
      if (p.seq > last[p.subject] + 1) ++run.gaps;
      last[p.subject] = p.seq;
      // Message::sequence counts what its subscription delivered: increasing per subscription.
      const std::uint16_t lane = static_cast<std::uint16_t>(kSubjects[p.subject][3]);  // 'a', 'b', 'c'
      if (m.sequence <= last_lane_seq[lane]) ++run.lane_sequence_regressions;
      last_lane_seq[lane] = m.sequence;
      EXPECT_NE(m.rx_tsc, 0u);
    }
    if (n != 0) src.release(burst);
    return n;
  };

  // Handshake: probes until every subscription delivered one, so the server knows all three SUBs
  // before the counted messages start. Probes are not counted: the server drops a probe that reaches it
  // before the SUB it would match (no interest), which is the very thing the handshake waits out.
  std::atomic<std::uint64_t> published{0};
  auto publish = [&](const std::string& subject, const SourcePayload& p) {
    const natsStatus s = natsConnection_Publish(pub_nc, subject.c_str(), &p, sizeof p);
    EXPECT_EQ(s, NATS_OK);
    // relaxed: read after join/flush
    if (s == NATS_OK && p.magic != kProbeMagic) published.fetch_add(1, std::memory_order_relaxed);
  };
  const bool handshake = until(
      [&] { return probe_seen[0] && probe_seen[1] && probe_seen[2]; }, 20'000ms,
      [&] {
        for (std::uint32_t i = 0; i < kProbeSubjects.size(); ++i) {
          SourcePayload p;
          p.magic = kProbeMagic;
          p.subject = i;
          publish(kProbeSubjects[i], p);
        }
        (void)natsConnection_FlushTimeout(pub_nc, 5000);
        for (int k = 0; k < 20; ++k) {
          poll_once();
          std::this_thread::sleep_for(1ms);
        }
      });
  EXPECT_TRUE(handshake) << "the source's subscriptions never delivered a probe";

  std::atomic<bool> publisher_done{false};
  std::thread publisher([&] {
    for (std::uint64_t seq = 1; seq <= per_subject; ++seq) {
      for (std::uint32_t i = 0; i < kSubjects.size(); ++i) {
        SourcePayload p;
        p.subject = i;
        p.seq = seq;
        p.check = check_words(i, seq);
        publish(kSubjects[i], p);
      }
    }
    EXPECT_EQ(natsConnection_FlushTimeout(pub_nc, 30'000), NATS_OK);  // the server has every message
    publisher_done.store(true, std::memory_order_release);           // pairs with the acquire below
  });

  if (slow) {
    // Let the queues overflow first (deterministically), then poll one burst at a time with pauses.
    EXPECT_TRUE(until([&] { return src.stats().drops > 0; }, 30'000ms)) << "no overflow counted";
  }
  const bool accounted = until(
      [&] {
        return publisher_done.load(std::memory_order_acquire) &&  // pairs with the release in the publisher
               run.received + src.stats().drops == published.load(std::memory_order_relaxed);
      },
      50'000ms,
      [&] {
        if (poll_once() == 0 || slow) std::this_thread::sleep_for(slow ? 200us : 20us);
      });
  publisher.join();
  EXPECT_TRUE(accounted) << "received " << run.received << " + drops " << src.stats().drops << " != published "
                         << published.load();
  // Nothing beyond the published messages arrives.
  for (int k = 0; k < 50; ++k) {
    poll_once();
    std::this_thread::sleep_for(1ms);
  }
  run.published = published.load(std::memory_order_relaxed);
  src.stop();
  reader.join();
  EXPECT_GT(reader.reads(), 0u);
  EXPECT_EQ(reader.regressions(), 0u);
  run.stats = src.stats();
  if (nsrc != nullptr) run.client = nsrc->client_counters();
  return run;
}

TEST_F(NatsStress, SourceAccountsForEveryMessageAcrossThreeSubscriptions) {
  start_server(false);
  natsConnection* nc = connect_plain();
  ASSERT_NE(nc, nullptr);
  constexpr std::uint64_t kPerSubject = 40'000;  // 200k messages
  const SourceRun r = run_core_source(*this, nc, kPerSubject, /*slow=*/false);
  natsConnection_Destroy(nc);

  EXPECT_EQ(r.published, kPerSubject * kSubjects.size());
  EXPECT_EQ(r.corrupt, 0u);
  EXPECT_EQ(r.out_of_order, 0u);
  EXPECT_EQ(r.lane_sequence_regressions, 0u);
  EXPECT_EQ(r.client.slow_consumer, 0u);
  EXPECT_EQ(r.stats.rejects, 0u);
  // With room in the queues nothing overflows: every message arrives, each subject gap-free.
  EXPECT_EQ(r.stats.drops, 0u);
  EXPECT_EQ(r.gaps, 0u);
  EXPECT_EQ(r.received, r.published);
  EXPECT_EQ(r.stats.messages, r.received + r.probes_received);
}

TEST_F(NatsStress, SourceCountsOverflowExactlyWithSmallQueues) {
  start_server(false);
  natsConnection* nc = connect_plain();
  ASSERT_NE(nc, nullptr);
  constexpr std::uint64_t kPerSubject = 10'000;  // 50k messages into 3 queues of 16
  const SourceRun r = run_core_source(*this, nc, kPerSubject, /*slow=*/true);
  natsConnection_Destroy(nc);

  EXPECT_EQ(r.published, kPerSubject * kSubjects.size());
  EXPECT_EQ(r.corrupt, 0u);
  EXPECT_EQ(r.out_of_order, 0u);  // drops leave gaps, never reorder
  EXPECT_EQ(r.lane_sequence_regressions, 0u);
  EXPECT_EQ(r.client.slow_consumer, 0u);  // every drop is the source's own overflow, counted per message
  EXPECT_GT(r.stats.drops, 0u);
  EXPECT_GT(r.gaps, 0u);
  EXPECT_EQ(r.received + r.stats.drops, r.published);
  EXPECT_EQ(r.stats.messages, r.received + r.probes_received);
}

// ---- (2) core sink ----------------------------------------------------------------------------------

const std::array<std::string, 8> kSymbols{"AAPL", "MSFT", "GOOG", "AMZN", "NVDA", "TSLA", "META", "IBM"};

market::TobUpdate make_update(std::uint64_t seq) {
  market::TobUpdate u;
  const std::string& sym = kSymbols[seq % kSymbols.size()];
  std::memcpy(u.symbol.data(), sym.data(), sym.size());
  u.locate = static_cast<std::uint16_t>(seq % kSymbols.size() + 1);
  u.bid_price = static_cast<std::uint32_t>(1'000'000 + seq % 1000);
  u.bid_qty = seq * 3;
  u.ask_price = u.bid_price + 100;
  u.ask_qty = seq * 5;
  u.timestamp_ns = 34'200'000'000'000 + seq;
  u.sequence = seq;
  return u;
}

/// Fills `out` with updates seq, seq+1, ... (their bytes in `storage`), every `itch_every`-th message an
/// ITCH-shaped 'A' record instead (filtered by publish = "updates"); returns the next sequence.
std::uint64_t fill_burst(Burst<>& out, std::array<std::array<std::byte, 64>, kDefaultBurst>& storage,
                         std::uint64_t seq, std::uint64_t last, std::uint64_t itch_every) {
  out.clear();
  while (!out.full() && seq <= last) {
    auto& bytes = storage[out.size()];
    Message& m = out.emplace_back();
    if (itch_every != 0 && seq % itch_every == 0) {
      std::memset(bytes.data(), 'A', 36);
      m.set_payload(bytes.data(), 36);
      m.type = 'A';
      m.set_key("ITCH");
    } else {
      const market::TobUpdate u = make_update(seq);
      market::encode_tob_update(u, std::span<std::byte, market::kTobUpdateSize>(bytes.data(), market::kTobUpdateSize));
      m.set_payload(bytes.data(), market::kTobUpdateSize);
      m.type = static_cast<std::uint16_t>(market::kTobUpdateType);
      m.set_key(kSymbols[seq % kSymbols.size()]);
    }
    m.sequence = seq++;
  }
  return seq;
}

/// What a libnats subscriber saw of the TobUpdates on "<prefix>.*" (its callbacks run on libnats' thread).
struct UpdateCounter {
  std::mutex mutex;  // the callback thread writes, the test thread reads
  std::uint64_t received = 0;
  std::uint64_t corrupt = 0;
  std::uint64_t out_of_order = 0;
  std::map<std::string, std::uint64_t> last;  // per symbol: the last gateway sequence

  static void on_msg(natsConnection*, natsSubscription*, natsMsg* msg, void* self) {
    auto* c = static_cast<UpdateCounter*>(self);
    market::TobUpdate u;
    const auto* data = reinterpret_cast<const std::byte*>(natsMsg_GetData(msg));
    const std::string_view subject = natsMsg_GetSubject(msg);
    const bool ok =
        market::decode_tob_update(std::span<const std::byte>(data, static_cast<std::size_t>(natsMsg_GetDataLength(msg))),
                                  u) == Status::Ok &&
        u == make_update(u.sequence) && subject.substr(subject.rfind('.') + 1) == u.symbol_trimmed();
    std::lock_guard lock(c->mutex);
    ++c->received;
    if (!ok) {
      ++c->corrupt;
    } else {
      std::uint64_t& prev = c->last[std::string(u.symbol_trimmed())];
      if (u.sequence <= prev) ++c->out_of_order;
      prev = u.sequence;
    }
    natsMsg_Destroy(msg);
  }
  std::uint64_t count() {
    std::lock_guard lock(mutex);
    return received;
  }
};

TEST_F(NatsStress, SinkPublishesEveryUpdateWhileStatsAreRead) {
  start_server(false);
  natsConnection* sub_nc = connect_plain();
  ASSERT_NE(sub_nc, nullptr);
  UpdateCounter seen;
  natsSubscription* sub = nullptr;
  ASSERT_EQ(natsConnection_Subscribe(&sub, sub_nc, "tob.*", &UpdateCounter::on_msg, &seen), NATS_OK);
  ASSERT_EQ(natsSubscription_SetPendingLimits(sub, 1 << 22, -1), NATS_OK);
  ASSERT_EQ(natsConnection_FlushTimeout(sub_nc, 5000), NATS_OK);  // the server has the SUB

  Built b = build("[sink.out]\ntype = \"nats\"\nservers = [\"" + url() +
                      "\"]\nsubject = \"tob.<SYMBOL>\"\npublish = \"updates\"\npayload = \"binary\"\n",
                  true);
  ASSERT_NE(b.sink, nullptr);
  adapter::Sink& sink = *b.sink;
  ASSERT_TRUE(started(sink));
  StatsReader<adapter::Sink> reader(sink);

  constexpr std::uint64_t kMessages = 200'000;
  constexpr std::uint64_t kItchEvery = 10;  // every 10th message is filtered
  constexpr std::uint64_t kUpdates = kMessages - kMessages / kItchEvery;
  Burst<> burst;
  std::array<std::array<std::byte, 64>, kDefaultBurst> storage{};
  std::uint64_t accepted = 0;
  for (std::uint64_t seq = 1; seq <= kMessages;) {
    seq = fill_burst(burst, storage, seq, kMessages, kItchEvery);
    const std::size_t n = sink.send(burst);
    EXPECT_EQ(n, burst.size());  // connected: core publishes never push back
    accepted += n;
    (void)sink.service();
    if ((seq / kDefaultBurst) % 64 == 0) sink.flush();  // the worker flushes at the end of a batch
  }
  sink.flush();
  EXPECT_EQ(accepted, kMessages);
  sink.stop();  // flushes to the server (drain_timeout)

  EXPECT_TRUE(until([&] { return seen.count() >= kUpdates; }, 50'000ms))
      << "the subscriber received " << seen.count() << " of " << kUpdates;
  std::this_thread::sleep_for(50ms);  // would let a duplicate show up
  reader.join();
  EXPECT_GT(reader.reads(), 0u);
  EXPECT_EQ(reader.regressions(), 0u);

  int64_t dropped = 0;
  EXPECT_EQ(natsSubscription_GetDropped(sub, &dropped), NATS_OK);
  EXPECT_EQ(dropped, 0);
  natsSubscription_Destroy(sub);
  natsConnection_Destroy(sub_nc);  // joins nothing of ours: the callbacks above are done
  {
    std::lock_guard lock(seen.mutex);
    EXPECT_EQ(seen.received, kUpdates);
    EXPECT_EQ(seen.corrupt, 0u);
    EXPECT_EQ(seen.out_of_order, 0u);
    EXPECT_EQ(seen.last.size(), kSymbols.size());
  }
  const adapter::SinkStats s = sink.stats();
  EXPECT_EQ(s.messages, kMessages);  // published + filtered
  EXPECT_EQ(s.errors, 0u);
  EXPECT_EQ(s.bytes, kUpdates * market::kTobUpdateSize);
  // NatsSinkCounters: what stats() exports as its per-sink counters.
  const nats::NatsSinkCounters c = dynamic_cast<nats::NatsSink&>(sink).counters();
  EXPECT_EQ(c.published, kUpdates);
  EXPECT_EQ(c.failed, 0u);
  EXPECT_EQ(c.pushback, 0u);
  EXPECT_EQ(c.pending, 0u);  // after stop(): nothing left in libnats' buffers
  EXPECT_EQ(c.filtered, kMessages / kItchEvery);
  EXPECT_EQ(c.published + c.filtered, kMessages);
}

// ---- (3) JetStream source ----------------------------------------------------------------------------

/// A JetStream `nats` sink owned by its own thread (start/send/service/stop there, as its worker would):
/// creates stream JS (subjects js.*) and publishes updates 1..count, then waits for every ack.
class JetStreamPublisher {
 public:
  JetStreamPublisher(const std::string& url, std::uint64_t count) {
    built_ = build("[sink.js]\ntype = \"nats\"\nservers = [\"" + url +
                       "\"]\nsubject = \"js.<SYMBOL>\"\njetstream = true\nstream = \"JS\"\nmax_pending = 4096\n",
                   true);
    if (built_.sink == nullptr) {
      ADD_FAILURE() << "no JetStream sink built";
      return;
    }
    thread_ = std::thread([this, count] { run(count); });
  }
  ~JetStreamPublisher() { join(); }
  void join() {
    if (thread_.joinable()) thread_.join();
  }
  [[nodiscard]] nats::NatsSinkCounters counters() const {
    return dynamic_cast<const nats::NatsSink&>(*built_.sink).counters();  // any thread
  }

 private:
  void run(std::uint64_t count) {
    adapter::Sink& sink = *built_.sink;
    EXPECT_TRUE(started(sink));
    Burst<> burst;
    std::array<std::array<std::byte, 64>, kDefaultBurst> storage{};
    std::uint64_t next = 1;
    const bool sent = until([&] { return next > count; }, 50'000ms, [&] {
      fill_burst(burst, storage, next, count, 0);
      const std::size_t n = sink.send(burst);  // 0 until the stream exists, or at max_pending
      next += n;
      if (sink.service() == 0 && n < burst.size()) std::this_thread::sleep_for(1ms);
    });
    EXPECT_TRUE(sent) << "the JetStream sink published " << next - 1 << " of " << count;
    auto* ns = dynamic_cast<nats::NatsSink*>(&sink);
    EXPECT_TRUE(until([&] { return ns->counters().acked >= count; }, 30'000ms, [&] {
      if (sink.service() == 0) std::this_thread::sleep_for(1ms);
    }));
    sink.stop();
    const nats::NatsSinkCounters c = ns->counters();
    EXPECT_EQ(c.published, count);
    EXPECT_EQ(c.acked, count);
    EXPECT_EQ(c.failed, 0u);
    EXPECT_EQ(c.duplicates, 0u);
  }

  Built built_;
  std::thread thread_;
};

std::string js_source_toml(const std::string& url) {
  return "[source.in]\ntype = \"nats\"\nservers = [\"" + url +
         "\"]\nsubjects = [\"js.*\"]\njetstream = true\nstream = \"JS\"\ndeliver = \"all\"\nqueue_capacity = "
         "65536\nreconnect_wait = \"50ms\"\nreconnect_wait_max = \"200ms\"\n";
}

/// The worker side of a JetStream source: polls, decodes, checks order and counts.
struct UpdateReader {
  std::uint64_t received = 0;
  std::uint64_t corrupt = 0;
  std::uint64_t out_of_order = 0;
  std::uint64_t lane_gaps = 0;  // Message::sequence not 1, 2, 3...
  std::uint64_t last_seq = 0;   // the stream holds 1..N in publish order (one publisher, no failover)
  Burst<> burst;

  std::size_t poll(adapter::Source& src) {
    burst.clear();
    const std::size_t n = src.poll(burst);
    for (const Message& m : burst) {
      ++received;
      market::TobUpdate u;
      if (market::decode_tob_update(m.payload(), u) != Status::Ok || u != make_update(u.sequence) ||
          m.key() != u.symbol_trimmed()) {
        ++corrupt;
        continue;
      }
      if (u.sequence != last_seq + 1) ++out_of_order;
      last_seq = u.sequence;
      if (m.sequence != received) ++lane_gaps;
    }
    if (n != 0) src.release(burst);
    return n;
  }
};

/// Polls a little longer (anything delivered twice or late arrives now), stops the source and joins
/// the stats reader; then every update 1..n must have been passed on once, in order.
void expect_every_update_once(adapter::Source& src, StatsReader<adapter::Source>& reader, UpdateReader& r,
                              std::uint64_t n) {
  for (int k = 0; k < 50; ++k) {
    r.poll(src);
    std::this_thread::sleep_for(1ms);
  }
  src.stop();
  reader.join();
  EXPECT_EQ(reader.regressions(), 0u);
  EXPECT_EQ(r.received, n);
  EXPECT_EQ(r.corrupt, 0u);
  EXPECT_EQ(r.out_of_order, 0u);
  EXPECT_EQ(r.lane_gaps, 0u);
  EXPECT_EQ(r.last_seq, n);
  EXPECT_EQ(src.stats().drops, 0u);
  EXPECT_EQ(src.stats().messages, n);
}

TEST_F(NatsStress, JetStreamSourceStartedBeforeTheStreamExists) {
  start_server(true);
  {
    // Stopped while its helper thread is still retrying (no stream, ever): stop() joins it.
    Built b = build(js_source_toml(url()), false);
    ASSERT_NE(b.source, nullptr);
    ASSERT_TRUE(started(*b.source));
    StatsReader<adapter::Source> reader(*b.source);
    UpdateReader r;
    for (int k = 0; k < 200; ++k) {  // across at least one retry (500 ms)
      r.poll(*b.source);
      std::this_thread::sleep_for(5ms);
    }
    b.source->stop();
    EXPECT_EQ(r.received, 0u);
  }
  Built b = build(js_source_toml(url()), false);
  ASSERT_NE(b.source, nullptr);
  adapter::Source& src = *b.source;
  ASSERT_TRUE(started(src));  // no stream yet: the helper thread retries
  StatsReader<adapter::Source> reader(src);
  UpdateReader r;
  for (int k = 0; k < 100; ++k) {
    r.poll(src);
    std::this_thread::sleep_for(5ms);
  }
  constexpr std::uint64_t kUpdates = 20'000;
  JetStreamPublisher publisher(url(), kUpdates);  // creates the stream, then publishes
  const bool all = until([&] { return r.received >= kUpdates; }, 50'000ms, [&] {
    if (r.poll(src) == 0) std::this_thread::sleep_for(200us);
  });
  publisher.join();
  EXPECT_TRUE(all) << "received " << r.received << " of " << kUpdates;
  expect_every_update_once(src, reader, r, kUpdates);
}

TEST_F(NatsStress, JetStreamSourceAcrossServerRestarts) {
  start_server(true);
  constexpr std::uint64_t kUpdates = 20'000;
  {
    JetStreamPublisher publisher(url(), kUpdates);
  }  // every update acked: stored
  server_->stop();  // clean shutdown: the store is flushed

  Built b = build(js_source_toml(url()), false);
  ASSERT_NE(b.source, nullptr);
  adapter::Source& src = *b.source;
  ASSERT_TRUE(started(src));  // no server: libnats retries the connection, the helper thread waits
  StatsReader<adapter::Source> reader(src);
  UpdateReader r;
  for (int k = 0; k < 100; ++k) {
    r.poll(src);
    std::this_thread::sleep_for(5ms);
  }
  EXPECT_EQ(r.received, 0u);

  // A chaos thread brings the server back, and restarts it again once the replay has begun, while the
  // test thread keeps polling.
  std::atomic<std::uint64_t> received_seen{0};
  std::atomic<bool> restarted_twice{false};
  std::thread chaos([&] {
    start_server(true);
    until([&] { return received_seen.load(std::memory_order_relaxed) > 0; }, 30'000ms);  // relaxed: a cue only
    server_->stop();
    start_server(true);
    restarted_twice.store(true, std::memory_order_release);  // pairs with the acquire below
  });
  const bool all = until(
      [&] { return restarted_twice.load(std::memory_order_acquire) && r.received >= kUpdates; }, 50'000ms, [&] {
        if (r.poll(src) == 0) std::this_thread::sleep_for(200us);
        received_seen.store(r.received, std::memory_order_relaxed);
      });
  chaos.join();
  EXPECT_TRUE(all) << "received " << r.received << " of " << kUpdates;
  for (int k = 0; k < 20; ++k) {
    r.poll(src);
    std::this_thread::sleep_for(1ms);
  }
  src.stop();
  reader.join();
  EXPECT_EQ(reader.regressions(), 0u);
  // The ordered consumer resumes after the last sequence it delivered: every update once, in order.
  EXPECT_EQ(r.received, kUpdates);
  EXPECT_EQ(r.corrupt, 0u);
  EXPECT_EQ(r.out_of_order, 0u);
  EXPECT_EQ(r.lane_gaps, 0u);
  EXPECT_EQ(src.stats().drops, 0u);
}

TEST_F(NatsStress, JetStreamSourceResumesAfterARecreatedConsumer) {
  // What the retry after a failed consumer request does (the server created the consumer and delivered
  // from it, then its reply was lost): the consumer is re-created mid-replay, from the last delivered
  // stream sequence + 1. Nothing is delivered twice, nothing is skipped.
  start_server(true);
  constexpr std::uint64_t kUpdates = 20'000;
  {
    JetStreamPublisher publisher(url(), kUpdates);
  }  // every update acked: stored
  Built b = build(js_source_toml(url()), false);
  ASSERT_NE(b.source, nullptr);
  adapter::Source& src = *b.source;
  ASSERT_TRUE(started(src));
  StatsReader<adapter::Source> reader(src);
  UpdateReader r;
  const bool some = until([&] { return r.received != 0; }, 30'000ms, [&] {
    if (r.poll(src) == 0) std::this_thread::sleep_for(200us);
  });
  ASSERT_TRUE(some) << "nothing received";
  const Result<std::uint64_t> from = dynamic_cast<nats::NatsSource&>(src).resubscribe_jetstream_for_test();
  ASSERT_TRUE(from.ok()) << from.error().message;
  EXPECT_GT(from.value(), r.received);  // at least what was polled was delivered
  EXPECT_LE(from.value(), kUpdates);   // mid-replay: the resumed consumer has work to do
  const bool all = until([&] { return r.received >= kUpdates; }, 50'000ms, [&] {
    if (r.poll(src) == 0) std::this_thread::sleep_for(200us);
  });
  EXPECT_TRUE(all) << "received " << r.received << " of " << kUpdates;
  expect_every_update_once(src, reader, r, kUpdates);
  EXPECT_EQ(src.stats().rejects, 0u);  // no redelivery reached the duplicate check either
}

}  // namespace
