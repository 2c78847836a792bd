// Pipeline<Decoder, Validators<...>, Transforms<...>, Router>: composition, reject accounting,
// multi-message decoders, emitter batching, the registry and the built-in pipelines.
#include "hypergate/route/pipeline.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "hypergate/config/config.hpp"
#include "hypergate/route/key_filter.hpp"
#include "hypergate/route/length_bounds.hpp"
#include "hypergate/route/passthrough_decoder.hpp"
#include "hypergate/route/rate_limiter.hpp"
#include "hypergate/route/registry.hpp"
#include "hypergate/route/sequence_check.hpp"
#include "routing/broadcast_router.hpp"
#include "routing/content_router.hpp"
#include "routing/failover_router.hpp"
#include "routing/hash_router.hpp"
#include "routing/round_robin_router.hpp"

namespace hypergate::route {
namespace {

using strategies::BroadcastRouter;
using strategies::ContentRouter;
using strategies::FailoverRouter;
using strategies::HashRouter;
using strategies::RoundRobinRouter;

/// Keeps everything delivered, and how many deliver() calls it took.
class Collect final : public Downstream {
 public:
  void deliver(std::span<const Message> messages, std::span<const Route> batch_routes) noexcept override {
    ++calls;
    for (std::size_t i = 0; i < messages.size(); ++i) {
      keys.emplace_back(messages[i].key());
      payloads.emplace_back(messages[i].text());
      routes.push_back(batch_routes[i]);
    }
  }
  std::size_t calls = 0;
  std::vector<std::string> keys;
  std::vector<std::string> payloads;
  std::vector<Route> routes;
};

/// Owns payload strings and turns them into a burst of frames.
struct Frames {
  std::vector<std::string> text;
  Burst<> burst;
  void add(std::string payload, std::uint64_t sequence = 0, std::uint16_t source = 0) {
    text.push_back(std::move(payload));
    pending.push_back({sequence, source});
  }
  Burst<>& build() {
    burst.clear();
    for (std::size_t i = 0; i < text.size(); ++i) {
      Message& m = burst.emplace_back();
      m.set_payload(text[i].data(), text[i].size());
      m.sequence = pending[i].first;
      m.source_id = pending[i].second;
    }
    return burst;
  }
  std::vector<std::pair<std::uint64_t, std::uint16_t>> pending;
};

std::uint64_t reason_count(const PipelineCounters& c, std::string_view reason) {
  for (const auto& [name, n] : c.rejects_by_reason) {
    if (name == reason) return n;
  }
  ADD_FAILURE() << "no reason " << reason;
  return 0;
}

// ---------------------------------------------------------------------------------------------
// Concepts give readable answers about stage shapes.
struct NotAStage {};
struct NoReasonsValidator {
  Verdict check(const Message&) noexcept { return Verdict::pass(); }
};
struct ThrowingValidator {
  static constexpr std::array<std::string_view, 0> kReasons{};
  Verdict check(const Message&) { return Verdict::pass(); }  // not noexcept
};
static_assert(!Validator<NotAStage>);
static_assert(!Validator<NoReasonsValidator>);
static_assert(!Validator<ThrowingValidator>);
static_assert(Validator<LengthBounds> && Validator<KeyFilter> && Validator<RateLimiter> && Validator<SequenceCheck<>>);
static_assert(Decoder<PassthroughDecoder> && !Decoder<LengthBounds>);
static_assert(Router<HashRouter> && Router<RoundRobinRouter> && Router<ContentRouter> && Router<FailoverRouter> &&
              Router<BroadcastRouter> && !Router<LengthBounds>);

// ---------------------------------------------------------------------------------------------
// Typed tests: the same invariants for pipelines composed with each routing strategy.
template <class R>
R make_router();
template <>
HashRouter make_router<HashRouter>() { return HashRouter(32); }
template <>
RoundRobinRouter make_router<RoundRobinRouter>() { return RoundRobinRouter(32, 4); }
template <>
ContentRouter make_router<ContentRouter>() {
  return ContentRouter(32, {ContentRouter::Rule::key_prefix("K1", 0b10)}, 0b01);
}
template <>
BroadcastRouter make_router<BroadcastRouter>() { return BroadcastRouter(32, 3); }
template <>
FailoverRouter make_router<FailoverRouter>() { return FailoverRouter(32, 0, 1, nullptr); }

template <class R>
class PipelineTyped : public ::testing::Test {
 protected:
  static auto make() {
    return make_pipeline("typed", PassthroughDecoder(PassthroughDecoder::KeyMode::FirstWord),
                         Validators{SequenceCheck<>(), LengthBounds(2, 40), KeyFilter({}, {"BAD"})},
                         Transforms<>{}, make_router<R>());
  }
};
using Routers = ::testing::Types<HashRouter, RoundRobinRouter, ContentRouter, BroadcastRouter, FailoverRouter>;
TYPED_TEST_SUITE(PipelineTyped, Routers);

TYPED_TEST(PipelineTyped, EveryMessageIsEmittedRejectedOrDropped) {
  auto p = TestFixture::make();
  Frames f;
  f.add("K1 a", 1);
  f.add("K2 b", 2);
  f.add("x", 3);                                   // too short
  f.add("BAD key", 4);                             // denied
  f.add("K3 " + std::string(50, 'z'), 5);          // too long
  f.add("K4 c", 5);                                // sequence_old (5 already seen)
  f.add("K5 d", 9);                                // gap 6..8, passes
  Collect down;
  Emitter out(down);
  p->process(f.build(), out);
  const PipelineCounters c = p->counters();
  EXPECT_EQ(c.in, 7u);
  EXPECT_EQ(c.emitted, 3u);
  EXPECT_EQ(c.rejected, 4u);
  EXPECT_EQ(c.dropped, 0u);
  EXPECT_EQ(c.emitted + c.rejected + c.dropped, c.in);
  EXPECT_EQ(reason_count(c, "too_short"), 1u);
  EXPECT_EQ(reason_count(c, "too_long"), 1u);
  EXPECT_EQ(reason_count(c, "key_denied"), 1u);
  EXPECT_EQ(reason_count(c, "sequence_old"), 1u);
  EXPECT_EQ(reason_count(c, "key_not_allowed"), 0u);
  EXPECT_EQ(down.keys, (std::vector<std::string>{"K1", "K2", "K5"}));
  EXPECT_EQ(down.payloads, (std::vector<std::string>{"K1 a", "K2 b", "K5 d"}));
  for (const Route& r : down.routes) {
    EXPECT_EQ(r.action, Action::Deliver);
    EXPECT_LT(r.lane, 32u);
    EXPECT_NE(r.sinks, 0u);
  }
  EXPECT_EQ(c.gaps, 1u);
  EXPECT_EQ(c.missing, 3u);
  ASSERT_EQ(c.recent_gaps.size(), 1u);
  EXPECT_EQ(c.recent_gaps[0].first_missing, 6u);
  EXPECT_EQ(c.recent_gaps[0].last_missing, 8u);
}

TYPED_TEST(PipelineTyped, CountersAccumulateAcrossBursts) {
  auto p = TestFixture::make();
  Collect down;
  Emitter out(down);
  std::uint64_t seq = 1;
  for (int b = 0; b < 10; ++b) {
    Frames f;
    for (int i = 0; i < 32; ++i) f.add("K" + std::to_string(i) + " v", seq++);
    p->process(f.build(), out);
  }
  const auto c = p->counters();
  EXPECT_EQ(c.in, 320u);
  EXPECT_EQ(c.emitted, 320u);
  EXPECT_EQ(c.rejected, 0u);
  EXPECT_EQ(down.keys.size(), 320u);
  EXPECT_EQ(down.calls, 10u) << "one deliver() per full burst of 32";
  EXPECT_EQ(out.pending(), 0u) << "process() flushes the emitter";
}

// ---------------------------------------------------------------------------------------------
// A decoder that splits a frame on ';' into several messages, and rejects frames starting with '!'.
struct SplitDecoder {
  static constexpr std::array<std::string_view, 1> kReasons{"malformed"};
  template <class Out>
  Verdict decode(const Message& frame, Out& out) noexcept {
    std::string_view t = frame.text();
    if (!t.empty() && t[0] == '!') return Verdict::reject(0);
    while (!t.empty()) {
      const auto semi = t.find(';');
      const std::string_view part = t.substr(0, semi);
      Message m = frame;
      m.set_payload(part.data(), part.size());
      m.set_key(part);
      out(m);
      if (semi == std::string_view::npos) break;
      t.remove_prefix(semi + 1);
    }
    return Verdict::pass();
  }
};
static_assert(Decoder<SplitDecoder>);

TEST(Pipeline, DecoderMayEmitManyMessagesPerFrameAndTheEmitterBatchesThem) {
  auto p = make_pipeline("split", SplitDecoder{}, Validators<>{}, Transforms<>{}, HashRouter(8));
  Frames f;
  std::string big;
  for (int i = 0; i < 70; ++i) big += (i ? ";" : "") + std::string("m") + std::to_string(i);
  f.add(big);
  f.add("!broken");
  f.add("a;b");
  Collect down;
  Emitter out(down);
  p->process(f.build(), out);
  EXPECT_EQ(down.keys.size(), 72u);
  EXPECT_EQ(down.calls, 3u);  // 32 + 32 + 8
  EXPECT_EQ(down.keys.front(), "m0");
  EXPECT_EQ(down.keys[69], "m69");
  EXPECT_EQ(down.keys.back(), "b");
  const auto c = p->counters();
  EXPECT_EQ(c.in, 3u);
  EXPECT_EQ(c.emitted, 72u);
  EXPECT_EQ(reason_count(c, "malformed"), 1u);
  EXPECT_EQ(p->rejects("malformed"), 1u);
}

TEST(Pipeline, RouterDropsAreCountedNotRejected) {
  auto p = make_pipeline("drop", PassthroughDecoder(), Validators<>{}, Transforms<>{},
                         ContentRouter(32, {ContentRouter::Rule::key_prefix("TEST", 0, true)}));
  Frames f;
  f.add("TEST1");
  f.add("LIVE1");
  f.add("TEST2");
  Collect down;
  Emitter out(down);
  p->process(f.build(), out);
  const auto c = p->counters();
  EXPECT_EQ(c.dropped, 2u);
  EXPECT_EQ(c.emitted, 1u);
  EXPECT_EQ(c.rejected, 0u);
  EXPECT_EQ(down.keys, std::vector<std::string>{"LIVE1"});
}

TEST(Pipeline, ReasonsAreListedInStageOrderAndSharedNamesReportedOnce) {
  auto p = make_pipeline("two_lengths", PassthroughDecoder(PassthroughDecoder::KeyMode::Range, 0, 3),
                         Validators{LengthBounds(1, 100), LengthBounds(5, 10)}, Transforms<>{}, HashRouter());
  const auto reasons = p->reasons();
  ASSERT_EQ(reasons.size(), 5u);
  EXPECT_EQ(reasons[0], "key_out_of_range");
  EXPECT_EQ(reasons[1], "too_short");
  EXPECT_EQ(reasons[3], "too_short");
  Frames f;
  f.add("ab");        // key range needs 3 bytes: decoder reject
  f.add("abcd");      // second LengthBounds: too short
  f.add("abcdefgh");  // passes
  Collect down;
  Emitter out(down);
  p->process(f.build(), out);
  const auto c = p->counters();
  EXPECT_EQ(c.rejects_by_reason.size(), 3u);  // key_out_of_range, too_short, too_long
  EXPECT_EQ(reason_count(c, "too_short"), 1u);
  EXPECT_EQ(reason_count(c, "key_out_of_range"), 1u);
  EXPECT_EQ(down.keys, std::vector<std::string>{"abc"});
}

TEST(Pipeline, CountersCanBeReadWhileTheWorkerProcesses) {
  auto p = make_pipeline("live", PassthroughDecoder(), Validators{LengthBounds(2, 100)}, Transforms<>{}, HashRouter());
  Collect down;
  Emitter out(down);
  Frames f;
  for (int i = 0; i < 32; ++i) f.add(i % 4 == 0 ? "x" : "key" + std::to_string(i));
  Burst<>& burst = f.build();
  std::atomic<bool> done{false};
  std::uint64_t last_in = 0;
  bool monotonic = true;
  std::thread reader([&] {
    while (!done.load(std::memory_order_acquire)) {
      const auto c = p->counters();
      monotonic = monotonic && c.in >= last_in;
      last_in = c.in;
    }
  });
  for (int i = 0; i < 200; ++i) {
    down.keys.clear();
    down.payloads.clear();
    down.routes.clear();
    p->process(burst, out);
  }
  done.store(true, std::memory_order_release);
  reader.join();
  EXPECT_TRUE(monotonic);
  const auto c = p->counters();
  EXPECT_EQ(c.in, 6400u);
  EXPECT_EQ(c.rejected, 1600u);
  EXPECT_EQ(c.emitted, 4800u);
}

// ---------------------------------------------------------------------------------------------
// Registry and built-in pipelines
struct Options {
  std::unique_ptr<config::Document> doc;
  config::Section section;
};
Options options(const std::string& toml) {
  auto doc = config::Document::parse("[source.feed]\ntype = \"x\"\n[source.feed.pipeline_options]\n" + toml, "test.toml");
  EXPECT_TRUE(doc.ok()) << (doc.ok() ? "" : doc.error().message);
  auto d = std::move(doc).value();
  auto feed = d->instances("source").at(0);
  (void)feed.string("type", "");
  auto opts = feed.table("pipeline_options");
  return Options{std::move(d), opts};
}
PipelineContext context() {
  PipelineContext ctx;
  ctx.lanes = 32;
  ctx.sink_count = 3;
  ctx.sink_names = {"alpha", "beta", "gamma"};
  return ctx;
}

TEST(PipelineRegistry, BuiltinsAreRegistered) {
  const auto list = PipelineRegistry::global().list();
  auto has = [&](std::string_view n) {
    return std::any_of(list.begin(), list.end(), [&](const auto& e) { return e.name == n; });
  };
  EXPECT_TRUE(has("passthrough"));
  EXPECT_TRUE(has("validated"));
}

TEST(PipelineRegistry, UnknownNameListsRegisteredOnes) {
  auto o = options("");
  auto r = PipelineRegistry::global().create("nope", o.section, context());
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("unknown pipeline 'nope'"), std::string::npos);
  EXPECT_NE(r.error().message.find("passthrough"), std::string::npos);
}

TEST(PipelineRegistry, RejectsBadContextAndDuplicateNames) {
  auto o = options("");
  auto ctx = context();
  ctx.lanes = 24;
  EXPECT_FALSE(PipelineRegistry::global().create("passthrough", o.section, ctx).ok());
  PipelineRegistry local;
  auto factory = [](config::Section&, const PipelineContext&) -> Result<std::unique_ptr<PipelineBase>> {
    return Error{Status::Unsupported, "x"};
  };
  EXPECT_TRUE(local.add("mine", "test", factory).ok());
  auto dup = local.add("mine", "again", factory);
  ASSERT_FALSE(dup.ok());
  EXPECT_NE(dup.error().message.find("already registered"), std::string::npos);
}

TEST(PipelineRegistry, PassthroughHashesTheConfiguredKey) {
  auto o = options("key = \"first_word\"\n");
  auto p = PipelineRegistry::global().create("passthrough", o.section, context());
  ASSERT_TRUE(p.ok()) << p.error().message;
  EXPECT_TRUE(o.doc->diagnostics().empty()) << o.doc->diagnostics().format();
  Frames f;
  f.add("MSFT 1 2");
  Collect down;
  Emitter out(down);
  (*p)->process(f.build(), out);
  ASSERT_EQ(down.keys.size(), 1u);
  EXPECT_EQ(down.keys[0], "MSFT");
  EXPECT_EQ(down.routes[0].lane, hash_bytes("MSFT") & 31);
}

TEST(PipelineRegistry, PassthroughRoutesToTheNamedSinksOnly) {
  auto o = options("sinks = [\"beta\", \"gamma\"]\n");
  auto p = PipelineRegistry::global().create("passthrough", o.section, context());
  ASSERT_TRUE(p.ok()) << p.error().message;
  Frames f;
  f.add("x");
  Collect down;
  Emitter out(down);
  (*p)->process(f.build(), out);
  ASSERT_EQ(down.routes.size(), 1u);
  EXPECT_EQ(down.routes[0].sinks, 0b110u);
  auto bad = options("sinks = [\"delta\"]\n");
  auto r = PipelineRegistry::global().create("passthrough", bad.section, context());
  ASSERT_FALSE(r.ok());
  EXPECT_NE(bad.doc->diagnostics().format().find("unknown sink 'delta' (sinks: alpha, beta, gamma)"),
            std::string::npos)
      << bad.doc->diagnostics().format();
}

TEST(PipelineRegistry, ValidatedReadsEveryOptionAndReportsUnknownKeys) {
  auto o = options(
      "key = \"first_word\"\nmin_length = 4\nmax_length = 20\ndeny_keys = [\"EVIL\"]\n"
      "rate_limit = 1000.0\nrate_burst = 2\nrouter = \"content\"\n"
      "rules = [\"prefix:AA -> beta\", \"prefix:ZZ -> drop\"]\ndefault_route = \"alpha,gamma\"\n"
      "typo_key = 1\n");
  auto p = PipelineRegistry::global().create("validated", o.section, context());
  ASSERT_TRUE(p.ok()) << p.error().message;
  ASSERT_EQ(o.doc->diagnostics().size(), 1u) << o.doc->diagnostics().format();
  EXPECT_NE(o.doc->diagnostics().items()[0].key.find("typo_key"), std::string::npos);

  Frames f;
  f.add("AAPL 1", 1);
  f.add("AAPL 2", 2);
  f.add("AAPL 3", 3);   // third in the same instant: over the burst of 2
  f.add("ZZZ 1", 4);    // dropped by rule
  f.add("EVIL 1", 5);   // denied
  f.add("MSFT 1", 6);   // default route
  f.add("a", 7);        // too short
  for (auto& m : f.build()) m.rx_tsc = 1'000'000;  // the same instant for the rate limiter
  Collect down;
  Emitter out(down);
  (*p)->process(f.burst, out);
  const auto c = (*p)->counters();
  EXPECT_EQ(reason_count(c, "rate_limited"), 1u);
  EXPECT_EQ(reason_count(c, "key_denied"), 1u);
  EXPECT_EQ(reason_count(c, "too_short"), 1u);
  EXPECT_EQ(c.dropped, 1u);
  ASSERT_EQ(down.keys, (std::vector<std::string>{"AAPL", "AAPL", "MSFT"}));
  EXPECT_EQ(down.routes[0].sinks, 0b010u);
  EXPECT_EQ(down.routes[2].sinks, 0b101u);
}

TEST(PipelineRegistry, ValidatedReportsUnknownSinksAndBadRules) {
  {
    auto o = options("router = \"content\"\nrules = [\"prefix:A -> nowhere\"]\n");
    auto p = PipelineRegistry::global().create("validated", o.section, context());
    ASSERT_FALSE(p.ok());
    EXPECT_NE(p.error().message.find("unknown sink 'nowhere'"), std::string::npos) << p.error().message;
    EXPECT_FALSE(o.doc->diagnostics().empty());
  }
  {
    auto o = options("router = \"content\"\nrules = [\"suffix:A -> alpha\"]\n");
    EXPECT_FALSE(PipelineRegistry::global().create("validated", o.section, context()).ok());
  }
  {
    auto o = options("router = \"failover\"\nprimary = \"alpha\"\n");
    EXPECT_FALSE(PipelineRegistry::global().create("validated", o.section, context()).ok());
  }
  {
    auto o = options("min_length = 10\nmax_length = 5\n");
    EXPECT_FALSE(PipelineRegistry::global().create("validated", o.section, context()).ok());
  }
  {
    auto o = options("router = \"teleport\"\n");
    (void)PipelineRegistry::global().create("validated", o.section, context());
    EXPECT_FALSE(o.doc->diagnostics().empty()) << "a value outside the choice is reported";
  }
}

TEST(PipelineRegistry, ValidatedFailoverFollowsTheHealthTable) {
  SinkHealth health;
  auto ctx = context();
  ctx.health = &health;
  auto o = options("router = \"failover\"\nprimary = \"beta\"\nbackup = \"gamma\"\n");
  auto p = PipelineRegistry::global().create("validated", o.section, ctx);
  ASSERT_TRUE(p.ok()) << p.error().message;
  Collect down;
  Emitter out(down);
  Frames f;
  f.add("K");
  (*p)->process(f.build(), out);
  health.set_healthy(1, false);
  (*p)->process(f.build(), out);
  health.set_healthy(1, true);
  (*p)->process(f.build(), out);
  ASSERT_EQ(down.routes.size(), 3u);
  EXPECT_EQ(down.routes[0].sinks, 0b010u);
  EXPECT_EQ(down.routes[1].sinks, 0b100u);
  EXPECT_EQ(down.routes[2].sinks, 0b010u);
}

TEST(PipelineRegistry, ValidatedWithoutOptionsUsesDefaults) {
  auto doc = config::Document::parse("", "empty.toml");
  ASSERT_TRUE(doc.ok());
  auto missing = (*doc)->section("nothing");
  auto p = PipelineRegistry::global().create("validated", missing, context());
  ASSERT_TRUE(p.ok()) << p.error().message;
  EXPECT_EQ((*p)->name(), "validated");
}

}  // namespace
}  // namespace hypergate::route
