// SubjectTemplate (adapters/nats): what a template accepts and refuses, how keys are rendered into
// subjects (always valid, never allocated), the wildcard a JetStream stream binds to; last_token();
// SinkStats' named counters, which carry the nats sink's counters to /stats and /metrics.
#include <gtest/gtest.h>

#include <array>
#include <string>

#include "hypergate/adapter/sink.hpp"
#include "nats/subject_template.hpp"

namespace {

// Suite names start with "nats" so that `ctest -R nats` selects them.
using hypergate::nats::last_token;
using hypergate::nats::SubjectTemplate;

std::string render(const SubjectTemplate& t, std::string_view key, char type = 'T') {
  std::array<char, SubjectTemplate::kMaxSubject> buf{};
  const std::size_t n = t.render(key, type, buf);
  return std::string(buf.data(), n);
}

TEST(natsSubjectTemplate, RendersSymbolAndType) {
  std::string why;
  const auto t = SubjectTemplate::parse("md.<SYMBOL>", &why);
  ASSERT_TRUE(t.has_value()) << why;
  EXPECT_EQ(render(*t, "AAPL"), "md.AAPL");
  const auto typed = SubjectTemplate::parse("itch.<TYPE>.<SYMBOL>.x", &why);
  ASSERT_TRUE(typed.has_value()) << why;
  EXPECT_EQ(render(*typed, "MSFT", 'A'), "itch.A.MSFT.x");
  EXPECT_EQ(typed->wildcard(), "itch.*.*.x");
  EXPECT_EQ(t->wildcard(), "md.*");
  const auto fixed = SubjectTemplate::parse("gen.all", &why);
  ASSERT_TRUE(fixed.has_value()) << why;
  EXPECT_EQ(render(*fixed, "whatever"), "gen.all");
  EXPECT_EQ(fixed->wildcard(), "gen.all");
}

TEST(natsSubjectTemplate, KeysThatCannotBeSubjectTokensAreSanitized) {
  std::string why;
  const auto t = SubjectTemplate::parse("md.<SYMBOL>", &why);
  ASSERT_TRUE(t.has_value());
  EXPECT_EQ(render(*t, "BRK.B"), "md.BRK_B");  // a '.' would make a second token
  EXPECT_EQ(render(*t, "A B*>"), "md.A_B__");
  EXPECT_EQ(render(*t, ""), "md._");
  EXPECT_EQ(render(*t, std::string(300, 'X')), "");  // does not fit: 0, never truncated into another subject
}

TEST(natsSubjectTemplate, RefusesWhatIsNotAPublishSubject) {
  for (const char* bad : {"", "md.<SYMBOL", "md.<FOO>", "md..<SYMBOL>", ".md", "md.", "md.*", "md.>", "md x",
                          "md.\t<SYMBOL>"}) {
    std::string why;
    EXPECT_FALSE(SubjectTemplate::parse(bad, &why).has_value()) << bad;
    EXPECT_FALSE(why.empty()) << bad;
  }
  std::string why;
  (void)SubjectTemplate::parse("md.<SYMBOL", &why);
  EXPECT_NE(why.find("unterminated placeholder"), std::string::npos) << why;
  (void)SubjectTemplate::parse("md.<FOO>", &why);
  EXPECT_NE(why.find("unknown placeholder <FOO>"), std::string::npos) << why;
}

TEST(natsSubjectTemplate, LastTokenIsTheSymbol) {
  EXPECT_EQ(last_token("md.AAPL"), "AAPL");
  EXPECT_EQ(last_token("a.b.c"), "c");
  EXPECT_EQ(last_token("plain"), "plain");
}

// Summing the details of several sink instances (the runtime does this for SinkReport::stats).
TEST(natsSinkStatsCounters, AccumulateAddsByNameAndStopsAtCapacity) {
  hypergate::adapter::AdapterCounters d;
  d.accumulate("published", 3);
  d.accumulate("pending", 1);
  d.accumulate("published", 4);
  ASSERT_EQ(d.size(), 2u);
  EXPECT_EQ(d.begin()[0].name_view(), "published");
  EXPECT_EQ(d.begin()[0].value, 7u);
  EXPECT_EQ(d.begin()[1].value, 1u);
  for (int i = 0; i < 20; ++i) d.accumulate("c" + std::to_string(i), 1);
  EXPECT_EQ(d.size(), hypergate::adapter::AdapterCounters::kMaxAdapterCounters);
}

}  // namespace
