// Configuration: typed reads, ranges, unknown keys and their positions, --set overrides, durations,
// endpoints, choices, nested tables, instances, syntax errors, and plan building with the built-in
// adapters (synthetic source, null sink) exactly as `hypergate config check` does it.
#include "hypergate/config/config.hpp"

#include <gtest/gtest.h>

#include <map>

#include <cmath>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

#include "hypergate/adapter/registry.hpp"
#include "hypergate/core/clock.hpp"
#include "plan.hpp"

namespace hypergate::config {
namespace {

std::unique_ptr<Document> parse_ok(std::string_view text, const std::vector<std::string>& sets = {}) {
  auto doc = Document::parse(text, "t.toml", sets);
  EXPECT_TRUE(doc.ok()) << (doc.ok() ? "" : doc.error().message);
  if (!doc.ok()) return nullptr;
  return std::move(doc).value();
}

std::vector<std::string> lines(const Document& doc) {
  std::vector<std::string> out;
  for (const auto& d : doc.diagnostics().items()) out.push_back(d.to_string());
  return out;
}

// ------------------------------------------------------------------------------------------------
// Typed reads
// ------------------------------------------------------------------------------------------------

TEST(ConfigTypes, ReadsEachTypeAndRecordsNothingWhenValid) {
  auto doc = parse_ok(R"([a]
s = "text"
i = 42
f = 2.5
fi = 3
b = true
l = ["x", "y"]
il = [1, 2, 3]
)");
  Section a = doc->section("a");
  EXPECT_TRUE(a.exists());
  EXPECT_EQ(a.path(), "a");
  EXPECT_EQ(a.name(), "a");
  EXPECT_EQ(a.string("s", "d"), "text");
  EXPECT_EQ(a.integer("i", 0, 0, 100), 42);
  EXPECT_DOUBLE_EQ(a.number("f", 0, 0, 10), 2.5);
  EXPECT_DOUBLE_EQ(a.number("fi", 0, 0, 10), 3.0);  // an integer is a number too
  EXPECT_TRUE(a.boolean("b", false));
  EXPECT_EQ(a.string_list("l"), (std::vector<std::string>{"x", "y"}));
  EXPECT_EQ(a.integer_list("il", 0, 10), (std::vector<std::int64_t>{1, 2, 3}));
  a.finish();
  doc->finish();
  EXPECT_TRUE(doc->diagnostics().empty()) << doc->diagnostics().format();
}

TEST(ConfigTypes, MissingKeysYieldDefaults) {
  auto doc = parse_ok("[a]\n");
  Section a = doc->section("a");
  EXPECT_EQ(a.string("s", "dflt"), "dflt");
  EXPECT_EQ(a.integer("i", 7, 0, 10), 7);
  EXPECT_DOUBLE_EQ(a.number("f", 1.5, 0, 10), 1.5);
  EXPECT_FALSE(a.boolean("b", false));
  EXPECT_TRUE(a.string_list("l").empty());
  EXPECT_EQ(a.duration_ns("d", 5), 5u);
  EXPECT_FALSE(a.has("s"));
  a.finish();
  EXPECT_TRUE(doc->diagnostics().empty());
}

TEST(ConfigTypes, WrongTypeIsReportedAtTheValueAndYieldsDefault) {
  auto doc = parse_ok("[a]\ni = \"nine\"\n  s = 12\nb = 1\nl = [\"x\", 2]\n");
  Section a = doc->section("a");
  EXPECT_EQ(a.integer("i", 3, 0, 10), 3);
  EXPECT_EQ(a.string("s", "d"), "d");
  EXPECT_TRUE(a.boolean("b", true));
  EXPECT_EQ(a.string_list("l"), (std::vector<std::string>{"x"}));
  const auto got = lines(*doc);
  ASSERT_EQ(got.size(), 4u);
  EXPECT_EQ(got[0], "t.toml:2:5: a.i: expected an integer, got a string \"nine\"");
  EXPECT_EQ(got[1], "t.toml:3:7: a.s: expected a string, got an integer");
  EXPECT_EQ(got[2], "t.toml:4:5: a.b: expected true or false, got an integer");
  EXPECT_EQ(got[3], "t.toml:5:11: a.l: element 1: expected a string, got an integer");
}

TEST(ConfigTypes, SectionThatIsNotATable) {
  auto doc = parse_ok("gateway = 3\n");
  Section g = doc->section("gateway");
  EXPECT_FALSE(g.exists());
  EXPECT_EQ(g.integer("workers", 1, 1, 64), 1);
  ASSERT_EQ(doc->diagnostics().size(), 1u);
  EXPECT_EQ(doc->diagnostics().items()[0].line, 1u);
  EXPECT_NE(doc->diagnostics().items()[0].message.find("expected a table [gateway]"), std::string::npos);
}

// ------------------------------------------------------------------------------------------------
// Ranges
// ------------------------------------------------------------------------------------------------

TEST(ConfigRanges, IntegerBoundsAreInclusive) {
  auto doc = parse_ok("[a]\nlo = 1\nhi = 64\nunder = 0\nover = 65\n");
  Section a = doc->section("a");
  EXPECT_EQ(a.integer("lo", 9, 1, 64), 1);
  EXPECT_EQ(a.integer("hi", 9, 1, 64), 64);
  EXPECT_EQ(a.integer("under", 9, 1, 64), 9);
  EXPECT_EQ(a.integer("over", 9, 1, 64), 9);
  const auto got = lines(*doc);
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0], "t.toml:4:9: a.under: value 0 is out of range [1, 64]");
  EXPECT_EQ(got[1], "t.toml:5:8: a.over: value 65 is out of range [1, 64]");
}

TEST(ConfigRanges, NumbersRejectOutOfRangeAndNan) {
  auto doc = parse_ok("[a]\nx = 10.5\nn = nan\ninf = inf\nok = 0.25\n");
  Section a = doc->section("a");
  EXPECT_DOUBLE_EQ(a.number("x", 1.0, 0.0, 10.0), 1.0);
  EXPECT_DOUBLE_EQ(a.number("n", 1.0, 0.0, 10.0), 1.0);
  EXPECT_DOUBLE_EQ(a.number("inf", 1.0, 0.0, 10.0), 1.0);
  EXPECT_DOUBLE_EQ(a.number("ok", 1.0, 0.0, 10.0), 0.25);
  EXPECT_EQ(doc->diagnostics().size(), 3u);
}

TEST(ConfigRanges, IntegerListElementsAreChecked) {
  auto doc = parse_ok("[a]\ncores = [0, 99, \"x\"]\n");
  Section a = doc->section("a");
  EXPECT_EQ(a.integer_list("cores", 0, 63), (std::vector<std::int64_t>{0}));
  const auto got = lines(*doc);
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0], "t.toml:2:13: a.cores: element 1: value 99 is out of range [0, 63]");
  EXPECT_EQ(got[1], "t.toml:2:17: a.cores: element 2: expected an integer, got a string \"x\"");
}

// ------------------------------------------------------------------------------------------------
// Unknown keys, missing keys, Document::finish
// ------------------------------------------------------------------------------------------------

TEST(ConfigUnknown, UnknownKeysAreReportedAtTheirOwnPosition) {
  auto doc = parse_ok("# comment\n[gateway]\nworkers = 2\n\n   wrokers = 3\nidle = \"busy\"\n");
  Section g = doc->section("gateway");
  EXPECT_EQ(g.integer("workers", 1, 1, 64), 2);
  g.finish();
  const auto got = lines(*doc);
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0], "t.toml:5:4: gateway.wrokers: unknown key (did you mean 'workers'?)");
  EXPECT_EQ(got[1], "t.toml:6:1: gateway.idle: unknown key");
}

TEST(ConfigUnknown, FinishTwiceReportsOnce) {
  auto doc = parse_ok("[a]\nx = 1\n");
  Section a = doc->section("a");
  a.finish();
  a.finish();
  EXPECT_EQ(doc->diagnostics().size(), 1u);
}

TEST(ConfigUnknown, DocumentFinishReportsUnknownTopLevelTablesAndKeys) {
  auto doc = parse_ok("stray = 1\n[gateway]\nworkers = 1\n\n[gatway]\nworkers = 2\n");
  Section g = doc->section("gateway");
  (void)g.integer("workers", 1, 1, 64);
  g.finish();
  (void)doc->section("admin");  // absent but asked for: known, and a candidate for suggestions
  doc->finish();
  const auto got = lines(*doc);
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0], "t.toml:1:1: stray: unknown key");
  EXPECT_EQ(got[1], "t.toml:5:2: gatway: unknown table (did you mean 'gateway'?)");
}

TEST(ConfigUnknown, MissingRequiredKeyIsReportedAtTheSection) {
  auto doc = parse_ok("[gateway]\n\n[source.feed]\nlisten = \":1\"\n");
  Section feed = doc->instances("source").at(0);
  EXPECT_FALSE(feed.required_string("type").has_value());
  ASSERT_EQ(doc->diagnostics().size(), 1u);
  const Diagnostic& d = doc->diagnostics().items()[0];
  EXPECT_EQ(d.line, 3u);
  EXPECT_EQ(d.key, "source.feed.type");
  EXPECT_NE(d.message.find("missing required key 'type'"), std::string::npos);
}

TEST(ConfigUnknown, ErrorPointsAtTheValue) {
  auto doc = parse_ok("[a]\nmode =   \"weird\"\n");
  Section a = doc->section("a");
  a.error("mode", "is weird");
  a.error("absent", "is absent");
  const auto got = lines(*doc);
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0], "t.toml:2:10: a.mode: is weird");
  EXPECT_EQ(got[1], "t.toml:1:1: a.absent: is absent");
}

TEST(ConfigUnknown, FormatSortsByPositionWithOverridesLast) {
  auto doc = parse_ok("[a]\nx = 1\ny = 2\n", {"a.z=3"});
  Section a = doc->section("a");
  a.error("y", "second");
  a.error("z", "from the command line");
  a.error("x", "first");
  EXPECT_EQ(doc->diagnostics().format(),
            "t.toml:2:5: a.x: first\nt.toml:3:5: a.y: second\n--set:1:5: a.z: from the command line\n");
}

// ------------------------------------------------------------------------------------------------
// --set overrides
// ------------------------------------------------------------------------------------------------

TEST(ConfigSet, OverridesAnExistingValue) {
  auto doc = parse_ok("[gateway]\nworkers = 1\n", {"gateway.workers=4"});
  Section g = doc->section("gateway");
  EXPECT_EQ(g.integer("workers", 1, 1, 64), 4);
  g.finish();
  EXPECT_TRUE(doc->diagnostics().empty());
}

TEST(ConfigSet, CreatesNewKeysAndIntermediateTables) {
  auto doc = parse_ok("[gateway]\n", {"source.fire.listen=127.0.0.1:18080", "source.fire.type=\"http.fire\"",
                                      "gateway.tags=[1,2]", "admin.enabled=false"});
  auto sources = doc->instances("source");
  ASSERT_EQ(sources.size(), 1u);
  EXPECT_EQ(sources[0].path(), "source.fire");
  EXPECT_EQ(sources[0].string("type", ""), "http.fire");
  auto ep = sources[0].endpoint("listen", "");
  ASSERT_TRUE(ep.has_value());
  EXPECT_EQ(ep->host, "127.0.0.1");
  EXPECT_EQ(ep->port, 18080);
  EXPECT_EQ(doc->section("gateway").integer_list("tags", 0, 9), (std::vector<std::int64_t>{1, 2}));
  EXPECT_FALSE(doc->section("admin").boolean("enabled", true));
  EXPECT_TRUE(doc->diagnostics().empty()) << doc->diagnostics().format();
}

TEST(ConfigSet, ValuesParseAsTomlWhenTheyCanElseAsStrings) {
  auto doc = parse_ok("", {"a.i=8080", "a.b=true", "a.q=\"x\"", "a.s=hello world", "a.d=250ms", "a.f=1.5",
                           "a.e="});
  Section a = doc->section("a");
  EXPECT_EQ(a.integer("i", 0, 0, 65535), 8080);
  EXPECT_TRUE(a.boolean("b", false));
  EXPECT_EQ(a.string("q", ""), "x");
  EXPECT_EQ(a.string("s", ""), "hello world");
  EXPECT_EQ(a.duration_ns("d", 0), 250'000'000u);
  EXPECT_DOUBLE_EQ(a.number("f", 0, 0, 2), 1.5);
  EXPECT_EQ(a.string("e", "default"), "");
  EXPECT_TRUE(doc->diagnostics().empty()) << doc->diagnostics().format();
}

TEST(ConfigSet, ValueWithANewlineIsAString) {
  auto doc = parse_ok("", {"a.s=1\nb = 2"});
  Section a = doc->section("a");
  EXPECT_EQ(a.string("s", ""), "1\nb = 2");
  a.finish();
  EXPECT_TRUE(doc->diagnostics().empty()) << doc->diagnostics().format();
}

TEST(ConfigSet, WrongTypeIsReportedOnTheCommandLine) {
  auto doc = parse_ok("[gateway]\nworkers = 1\n", {"admin.enabled=true", "gateway.workers=many"});
  Section g = doc->section("gateway");
  EXPECT_EQ(g.integer("workers", 1, 1, 64), 1);
  ASSERT_EQ(doc->diagnostics().size(), 1u);
  const Diagnostic& d = doc->diagnostics().items()[0];
  EXPECT_EQ(d.file, "--set");
  EXPECT_EQ(d.line, 2u);     // the second --set
  EXPECT_EQ(d.column, 17u);  // where "many" starts in "gateway.workers=many"
  EXPECT_EQ(d.to_string(), "--set:2:17: gateway.workers: expected an integer, got a string \"many\"");
}

TEST(ConfigSet, UnknownKeyFromTheCommandLine) {
  auto doc = parse_ok("[gateway]\n", {"gateway.wrkers=2"});
  Section g = doc->section("gateway");
  (void)g.integer("workers", 1, 1, 64);
  g.finish();
  ASSERT_EQ(doc->diagnostics().size(), 1u);
  EXPECT_EQ(doc->diagnostics().items()[0].to_string(), "--set:1:1: gateway.wrkers: unknown key (did you mean 'workers'?)");
}

TEST(ConfigSet, MalformedOverridesAreErrors) {
  for (const char* bad : {"no-equals", "=1", "a..b=1", "a.b c=1", ".a=1"}) {
    auto doc = Document::parse("", "t.toml", {bad});
    ASSERT_FALSE(doc.ok()) << bad;
    EXPECT_EQ(doc.error().message.rfind("--set:1:", 0), 0u) << doc.error().message;
  }
  // Descending into a value that is not a table.
  auto doc = Document::parse("[gateway]\nworkers = 1\n", "t.toml", {"gateway.workers.x=1"});
  ASSERT_FALSE(doc.ok());
  EXPECT_NE(doc.error().message.find("gateway.workers: is an integer"), std::string::npos) << doc.error().message;
}

TEST(ConfigSet, LaterOverrideWins) {
  auto doc = parse_ok("", {"a.x=1", "a.x=2"});
  EXPECT_EQ(doc->section("a").integer("x", 0, 0, 9), 2);
}

// ------------------------------------------------------------------------------------------------
// Durations, endpoints, choices
// ------------------------------------------------------------------------------------------------

TEST(ConfigDuration, ParsesUnits) {
  EXPECT_EQ(parse_duration_ns("250ms"), 250'000'000u);
  EXPECT_EQ(parse_duration_ns("1s"), 1'000'000'000u);
  EXPECT_EQ(parse_duration_ns("10us"), 10'000u);
  EXPECT_EQ(parse_duration_ns("500ns"), 500u);
  EXPECT_EQ(parse_duration_ns("2m"), 120'000'000'000u);
  EXPECT_EQ(parse_duration_ns("1h"), 3'600'000'000'000u);
  EXPECT_EQ(parse_duration_ns("1234"), 1234u);
  EXPECT_EQ(parse_duration_ns("0"), 0u);
  for (const char* bad : {"", "ms", "1.5s", "-1s", "1 s", "1sec", "10S", "99999999999999999999", "18446744073709s"}) {
    EXPECT_FALSE(parse_duration_ns(bad).has_value()) << bad;
  }
}

TEST(ConfigDuration, SectionAcceptsStringsAndIntegerNanoseconds) {
  auto doc = parse_ok("[a]\ns = \"10us\"\ni = 750\nneg = -1\nbad = \"soon\"\nf = 1.5\n");
  Section a = doc->section("a");
  EXPECT_EQ(a.duration_ns("s", 0), 10'000u);
  EXPECT_EQ(a.duration_ns("i", 0), 750u);
  EXPECT_EQ(a.duration_ns("neg", 7), 7u);
  EXPECT_EQ(a.duration_ns("bad", 7), 7u);
  EXPECT_EQ(a.duration_ns("f", 7), 7u);
  const auto got = lines(*doc);
  ASSERT_EQ(got.size(), 3u);
  EXPECT_EQ(got[0].rfind("t.toml:4:7: a.neg:", 0), 0u) << got[0];
  EXPECT_EQ(got[1].rfind("t.toml:5:7: a.bad: expected a duration", 0), 0u) << got[1];
  EXPECT_EQ(got[2].rfind("t.toml:6:5: a.f:", 0), 0u) << got[2];
}

TEST(ConfigEndpoint, ParsesHostPortForms) {
  auto e = parse_endpoint("127.0.0.1:9901");
  ASSERT_TRUE(e);
  EXPECT_EQ(e->host, "127.0.0.1");
  EXPECT_EQ(e->port, 9901);
  e = parse_endpoint("[::1]:80");
  ASSERT_TRUE(e);
  EXPECT_EQ(e->host, "::1");
  EXPECT_EQ(e->port, 80);
  EXPECT_EQ(e->to_string(), "[::1]:80");
  e = parse_endpoint(":8080");
  ASSERT_TRUE(e);
  EXPECT_EQ(e->host, "0.0.0.0");
  EXPECT_EQ(e->port, 8080);
  e = parse_endpoint("feed-1.example.com:65535");
  ASSERT_TRUE(e);
  EXPECT_EQ(e->host, "feed-1.example.com");
  EXPECT_EQ(e->port, 65535);
  EXPECT_EQ(e->to_string(), "feed-1.example.com:65535");
  e = parse_endpoint("[fe80::1%eth0]:9000");
  ASSERT_TRUE(e);
  EXPECT_EQ(e->host, "fe80::1%eth0");
  for (const char* bad : {"", "host", "host:", "host:65536", "host:-1", "host:8o", "::1:80", "[::1]80", "[::1]:",
                          "[zz::1]:80", "[]:80", "300.1.1.1:80", "a b:80", ":", "1.2.3:80x"}) {
    EXPECT_FALSE(parse_endpoint(bad).has_value()) << bad;
  }
}

TEST(ConfigEndpoint, SectionReadsWithDefaultsAndReportsBadValues) {
  auto doc = parse_ok("[a]\nlisten = \"0.0.0.0:80\"\nbad = \"nowhere\"\n");
  Section a = doc->section("a");
  EXPECT_EQ(a.endpoint("listen", "")->to_string(), "0.0.0.0:80");
  EXPECT_EQ(a.endpoint("absent", "127.0.0.1:9901")->to_string(), "127.0.0.1:9901");
  EXPECT_FALSE(a.endpoint("absent2", "").has_value());
  EXPECT_EQ(a.endpoint("bad", ":1")->port, 1);  // the default
  ASSERT_EQ(doc->diagnostics().size(), 1u);
  EXPECT_EQ(doc->diagnostics().items()[0].line, 3u);
  EXPECT_EQ(doc->diagnostics().items()[0].column, 7u);
}

TEST(ConfigChoice, AcceptsAllowedValuesAndListsThemOtherwise) {
  auto doc = parse_ok("[valves]\npolicy = \"spin\"\nidle = \"lazy\"\n");
  Section v = doc->section("valves");
  EXPECT_EQ(v.choice("policy", "drop", {"drop", "spin", "conflate", "disconnect"}), "spin");
  EXPECT_EQ(v.choice("idle", "backoff", {"busy", "backoff"}), "backoff");
  EXPECT_EQ(v.choice("absent", "drop", {"drop"}), "drop");
  ASSERT_EQ(doc->diagnostics().size(), 1u);
  EXPECT_EQ(doc->diagnostics().items()[0].to_string(),
            "t.toml:3:8: valves.idle: expected one of \"busy\", \"backoff\"; got a string \"lazy\"");
}

// ------------------------------------------------------------------------------------------------
// Nested tables and instances
// ------------------------------------------------------------------------------------------------

TEST(ConfigNested, NestedTablesHaveTheirOwnKeysAndFinish) {
  auto doc = parse_ok(R"([source.feed]
type = "udp"
tls.verify = true
[source.feed.options]
depth = 5
bogus = 1
)");
  auto feeds = doc->instances("source");
  ASSERT_EQ(feeds.size(), 1u);
  Section feed = feeds[0];
  EXPECT_EQ(feed.string("type", ""), "udp");
  Section tls = feed.table("tls");
  EXPECT_TRUE(tls.exists());
  EXPECT_EQ(tls.path(), "source.feed.tls");
  EXPECT_TRUE(tls.boolean("verify", false));
  Section options = feed.table("options");
  EXPECT_EQ(options.integer("depth", 0, 0, 10), 5);
  Section none = feed.table("absent");
  EXPECT_FALSE(none.exists());
  EXPECT_EQ(none.integer("x", 3, 0, 9), 3);
  none.finish();
  tls.finish();
  options.finish();
  feed.finish();
  doc->finish();
  const auto got = lines(*doc);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0], "t.toml:6:1: source.feed.options.bogus: unknown key");
}

TEST(ConfigNested, TableThatIsNotATable) {
  auto doc = parse_ok("[a]\ntls = 1\n");
  Section a = doc->section("a");
  EXPECT_FALSE(a.table("tls").exists());
  a.finish();
  ASSERT_EQ(doc->diagnostics().size(), 1u);  // the type error, not also "unknown key"
  EXPECT_EQ(doc->diagnostics().items()[0].to_string(), "t.toml:2:7: a.tls: expected a table, got an integer");
}

TEST(ConfigInstances, InFileOrderWithNames) {
  auto doc = parse_ok(R"([source.zeta]
type = "a"
[source.alpha]
type = "b"
[sink.only]
type = "c"
)");
  auto sources = doc->instances("source");
  ASSERT_EQ(sources.size(), 2u);
  EXPECT_EQ(sources[0].name(), "zeta");  // file order, not alphabetical
  EXPECT_EQ(sources[1].name(), "alpha");
  EXPECT_EQ(sources[1].path(), "source.alpha");
  EXPECT_EQ(doc->instances("sink").size(), 1u);
  EXPECT_TRUE(doc->instances("nothing").empty());
  doc->finish();
  EXPECT_TRUE(doc->diagnostics().empty()) << doc->diagnostics().format();
}

TEST(ConfigInstances, NonTableChildrenAreErrors) {
  auto doc = parse_ok("[source]\ntype = \"udp\"\n[source.ok]\ntype = \"x\"\n");
  auto sources = doc->instances("source");
  ASSERT_EQ(sources.size(), 1u);
  ASSERT_EQ(doc->diagnostics().size(), 1u);
  EXPECT_EQ(doc->diagnostics().items()[0].line, 2u);
  EXPECT_EQ(doc->diagnostics().items()[0].key, "source.type");
}

// ------------------------------------------------------------------------------------------------
// Syntax errors and files
// ------------------------------------------------------------------------------------------------

TEST(ConfigSyntax, ErrorCarriesFileLineColumn) {
  auto doc = Document::parse("[gateway]\nworkers = 1\nidle = \n", "cfg/x.toml");
  ASSERT_FALSE(doc.ok());
  EXPECT_EQ(doc.error().message.rfind("cfg/x.toml:3:8: ", 0), 0u) << doc.error().message;

  doc = Document::parse("[a]\nx = 1\n[a]\n", "dup.toml");  // redefinition
  ASSERT_FALSE(doc.ok());
  EXPECT_EQ(doc.error().message.rfind("dup.toml:3:", 0), 0u) << doc.error().message;

  doc = Document::parse("a = \"unterminated\n", "s.toml");
  ASSERT_FALSE(doc.ok());
  EXPECT_EQ(doc.error().message.rfind("s.toml:1:", 0), 0u) << doc.error().message;
}

TEST(ConfigSyntax, BinaryGarbageIsAnErrorNotACrash) {
  const std::string junk("\xff\xfe\x00[[a\x01=", 8);
  auto doc = Document::parse(junk, "junk.toml");
  EXPECT_FALSE(doc.ok());
}

TEST(ConfigFile, MissingFileIsAnIoError) {
  auto doc = Document::load("/nonexistent/hypergate.toml");
  ASSERT_FALSE(doc.ok());
  EXPECT_EQ(doc.error().code, Status::IoError);
  EXPECT_NE(doc.error().message.find("/nonexistent/hypergate.toml"), std::string::npos);
  EXPECT_NE(doc.error().message.find("No such file"), std::string::npos);

  doc = Document::load("/tmp");  // a directory
  ASSERT_FALSE(doc.ok());
  EXPECT_EQ(doc.error().code, Status::IoError);
}

TEST(ConfigFile, LoadsTheDefaultDeploymentWithItsFileName) {
  const std::string path = std::string(HG_SOURCE_DIR) + "/configs/default.toml";
  auto doc = Document::load(path);
  ASSERT_TRUE(doc.ok()) << doc.error().message;
  EXPECT_EQ((*doc)->file(), path);
  EXPECT_EQ((*doc)->section("gateway").integer("workers", 0, 1, 64), 1);
}

TEST(ConfigDiagnostic, ToStringFormat) {
  Diagnostic d{"f.toml", 12, 8, "source.feed.listen", "expected host:port"};
  EXPECT_EQ(d.to_string(), "f.toml:12:8: source.feed.listen: expected host:port");
  Diagnostic no_pos{"f.toml", 0, 0, "k", "m"};
  EXPECT_EQ(no_pos.to_string(), "f.toml: k: m");
}

}  // namespace
}  // namespace hypergate::config

// ------------------------------------------------------------------------------------------------
// Plan building with the built-in adapters
// ------------------------------------------------------------------------------------------------

namespace hypergate::gateway {
namespace {

std::unique_ptr<config::Document> doc_of(std::string_view text, const std::vector<std::string>& sets = {}) {
  auto doc = config::Document::parse(text, "plan.toml", sets);
  EXPECT_TRUE(doc.ok()) << (doc.ok() ? "" : doc.error().message);
  return doc.ok() ? std::move(doc).value() : nullptr;
}

TEST(ConfigPlan, BuiltinAdaptersAreRegistered) {
  EXPECT_NE(adapter::Registry::global().source("synthetic"), nullptr);
  EXPECT_NE(adapter::Registry::global().sink("null"), nullptr);
}

TEST(ConfigPlan, DefaultDeploymentBuilds) {
  // The market-data gateway: every adapter type it names is registered and every key it sets is read.
  auto doc = config::Document::load(std::string(HG_SOURCE_DIR) + "/configs/default.toml");
  ASSERT_TRUE(doc.ok()) << doc.error().message;
  auto plan = build_plan(**doc);
  ASSERT_TRUE(plan.ok()) << plan.error().message;
  EXPECT_EQ(plan->gateway.workers, 1u);
  EXPECT_EQ(plan->admin.listen.to_string(), "127.0.0.1:9901");
  std::map<std::string, std::pair<std::string, std::string>> sources;
  for (const auto& s : plan->sources) {
    ASSERT_NE(s.source, nullptr) << s.name;
    ASSERT_NE(s.pipeline_instance, nullptr) << s.name;
    sources[s.name] = {s.type, s.pipeline};
  }
  const std::map<std::string, std::pair<std::string, std::string>> want_sources{
      {"feed", {"udp", "itch"}},
      {"fire", {"http.fire", "passthrough"}},
      {"catchall", {"http.catchall", "passthrough"}},
      {"demo", {"pcap", "passthrough"}}};
  EXPECT_EQ(sources, want_sources);
  std::map<std::string, std::string> sinks;
  for (const auto& k : plan->sinks) {
    ASSERT_NE(k.instances.at(0), nullptr) << k.name;
    sinks[k.name] = k.type;
  }
  const std::map<std::string, std::string> want_sinks{
      {"subscribers", "soupbintcp"}, {"republish", "udp"}, {"discard", "null"}, {"exchange", "udp"}};
  EXPECT_EQ(sinks, want_sinks);
}

TEST(ConfigPlan, SyntheticDeploymentBuilds) {
  auto doc = config::Document::load(std::string(HG_SOURCE_DIR) + "/configs/synthetic.toml");
  ASSERT_TRUE(doc.ok()) << doc.error().message;
  auto plan = build_plan(**doc);
  ASSERT_TRUE(plan.ok()) << plan.error().message;
  ASSERT_EQ(plan->sources.size(), 1u);
  EXPECT_EQ(plan->sources[0].type, "synthetic");
  EXPECT_EQ(plan->sources[0].pipeline, "passthrough");
  ASSERT_EQ(plan->sinks.size(), 1u);
  EXPECT_EQ(plan->sinks[0].type, "null");
}

TEST(ConfigPlan, DefaultsWhenSectionsAreAbsent) {
  auto doc = doc_of("");
  auto plan = build_plan(*doc);
  ASSERT_TRUE(plan.ok()) << plan.error().message;
  EXPECT_EQ(plan->gateway.workers, 1u);
  EXPECT_TRUE(plan->gateway.cores.empty());
  EXPECT_EQ(plan->gateway.idle, GatewaySettings::Idle::Backoff);
  EXPECT_EQ(plan->gateway.burst, 32u);
  EXPECT_EQ(plan->gateway.idle_sleep_ns, 200'000u);
  EXPECT_TRUE(plan->admin.enabled);
  EXPECT_EQ(plan->admin.listen.to_string(), "127.0.0.1:9901");
  EXPECT_EQ(plan->valves.lanes, 32u);
  EXPECT_EQ(plan->valves.capacity, 4096u);
  EXPECT_EQ(plan->valves.policy, ValveSettings::Policy::Drop);
  EXPECT_FALSE(plan->store.path.has_value());
  EXPECT_TRUE(plan->sources.empty());
}

TEST(ConfigPlan, ReadsEverySection) {
  auto doc = doc_of(R"([gateway]
workers = 2
cores = [2, 3]
idle = "busy"
burst = 64
idle_sleep = "5ms"
[admin]
enabled = false
listen = "[::1]:9000"
[valves]
lanes = 64
capacity = 1024
policy = "conflate"
spin_ns = "5us"
[store]
arena_bytes = 1048576
slots = 1024
path = "/tmp/store.bin"
[source.s]
type = "synthetic"
pipeline = "validated"
worker = 1
[source.s.pipeline_options]
max_length = 3
[sink.n]
type = "null"
)");
  auto plan = build_plan(*doc);
  ASSERT_TRUE(plan.ok()) << plan.error().message;
  EXPECT_EQ(plan->gateway.workers, 2u);
  EXPECT_EQ(plan->gateway.cores, (std::vector<unsigned>{2, 3}));
  EXPECT_EQ(plan->gateway.idle, GatewaySettings::Idle::Busy);
  EXPECT_EQ(plan->gateway.burst, 64u);
  EXPECT_EQ(plan->gateway.idle_sleep_ns, 5'000'000u);
  EXPECT_FALSE(plan->admin.enabled);
  EXPECT_EQ(plan->admin.listen.to_string(), "[::1]:9000");
  EXPECT_EQ(plan->valves.lanes, 64u);
  EXPECT_EQ(plan->valves.capacity, 1024u);
  EXPECT_EQ(plan->valves.policy, ValveSettings::Policy::Conflate);
  EXPECT_EQ(plan->valves.spin_ns, 5000u);
  EXPECT_EQ(plan->store.arena_bytes, 1048576u);
  EXPECT_EQ(plan->store.slots, 1024u);
  EXPECT_EQ(plan->store.path, "/tmp/store.bin");
  ASSERT_EQ(plan->sources.size(), 1u);
  EXPECT_EQ(plan->sources[0].pipeline, "validated");
  EXPECT_EQ(plan->sources[0].worker, 1u);
  ASSERT_NE(plan->sources[0].pipeline_instance, nullptr);
  EXPECT_EQ(plan->sources[0].pipeline_instance->name(), "validated");
  ASSERT_EQ(plan->sinks.size(), 1u);
  EXPECT_EQ(plan->sinks[0].instances.size(), 2u);  // one per worker
}

TEST(ConfigPlan, ReportsEveryProblemWithPositions) {
  auto doc = doc_of(R"([gateway]
workers = 0
cores = [1]
[valves]
lanes = 48
policy = "block"
[source.a]
type = "carrier-pigeon"
[source.b]
rate = 10
[source.c]
type = "synthetic"
rate = "fast"
colour = "red"
[sink.n]
type = 7
[store]
slots = 1000
)");
  auto plan = build_plan(*doc);
  ASSERT_FALSE(plan.ok());
  const std::string& m = plan.error().message;
  EXPECT_NE(m.find("plan.toml:2:11: gateway.workers: value 0 is out of range [1, 64]"), std::string::npos) << m;
  EXPECT_NE(m.find("plan.toml:5:9: valves.lanes: 48 is not a power of two"), std::string::npos) << m;
  EXPECT_NE(m.find("plan.toml:6:10: valves.policy: expected one of"), std::string::npos) << m;
  EXPECT_NE(m.find("plan.toml:8:8: source.a.type: unknown source type 'carrier-pigeon' (registered: "),
            std::string::npos) << m;
  EXPECT_NE(m.find("synthetic"), std::string::npos) << m;
  EXPECT_NE(m.find("plan.toml:9:1: source.b.type: missing required key 'type'"), std::string::npos) << m;
  EXPECT_NE(m.find("plan.toml:10:1: source.b.rate: unknown key"), std::string::npos) << m;
  EXPECT_NE(m.find("plan.toml:13:8: source.c.rate: expected an integer"), std::string::npos) << m;
  EXPECT_NE(m.find("plan.toml:14:1: source.c.colour: unknown key"), std::string::npos) << m;
  EXPECT_NE(m.find("plan.toml:16:8: sink.n.type: expected a string, got an integer"), std::string::npos) << m;
  EXPECT_NE(m.find("plan.toml:18:9: store.slots: 1000 is not a power of two"), std::string::npos) << m;
  // Lines come out in file order.
  EXPECT_LT(m.find("plan.toml:2:"), m.find("plan.toml:5:"));
  EXPECT_LT(m.find("plan.toml:16:"), m.find("plan.toml:18:"));
}

TEST(ConfigPlan, IdleSleepOutsideItsRangeIsALineNumberedError) {
  for (const char* v : {"\"0s\"", "\"500ns\"", "\"61s\""}) {
    auto doc = doc_of(std::string("[gateway]\nidle_sleep = ") + v + "\n");
    auto plan = build_plan(*doc);
    ASSERT_FALSE(plan.ok()) << v;
    EXPECT_NE(plan.error().message.find("plan.toml:2:14: gateway.idle_sleep: must be between 1us and 60s"),
              std::string::npos) << plan.error().message;
  }
  auto doc = doc_of("[gateway]\nidle_sleep = \"60s\"\n");
  auto plan = build_plan(*doc);
  ASSERT_TRUE(plan.ok()) << plan.error().message;
  EXPECT_EQ(plan->gateway.idle_sleep_ns, 60'000'000'000u);
}

TEST(ConfigPlan, UnknownTopLevelTable) {
  auto doc = doc_of("[valve]\nlanes = 32\n");
  auto plan = build_plan(*doc);
  ASSERT_FALSE(plan.ok());
  EXPECT_NE(plan.error().message.find("plan.toml:1:2: valve: unknown table (did you mean 'valves'?)"),
            std::string::npos)
      << plan.error().message;
}

TEST(ConfigPlan, SetOverridesReachTheAdapters) {
  auto doc = doc_of("[source.s]\ntype = \"synthetic\"\ncount = 5\n", {"source.s.count=x", "sink.n.type=null"});
  auto plan = build_plan(*doc);
  ASSERT_FALSE(plan.ok());
  EXPECT_NE(plan.error().message.find("--set:1:16: source.s.count: expected an integer, got a string \"x\""),
            std::string::npos)
      << plan.error().message;
}

TEST(ConfigPlan, FailingAndThrowingFactoriesBecomeDiagnostics) {
  auto& registry = adapter::Registry::global();
  if (registry.source("test.refusing") == nullptr) {
    ASSERT_TRUE(registry
                    .add_source("test.refusing", "test",
                                [](config::Section&, const adapter::Context&) -> Result<std::unique_ptr<adapter::Source>> {
                                  return Error{Status::Unsupported, "no such hardware"};
                                })
                    .ok());
    ASSERT_TRUE(registry
                    .add_sink("test.throwing", "test",
                              [](config::Section&, const adapter::Context&) -> Result<std::unique_ptr<adapter::Sink>> {
                                throw std::runtime_error("boom");
                              })
                    .ok());
  }
  auto doc = doc_of("[source.a]\ntype = \"test.refusing\"\n[sink.b]\ntype = \"test.throwing\"\n");
  auto plan = build_plan(*doc);
  ASSERT_FALSE(plan.ok());
  const std::string& m = plan.error().message;
  EXPECT_NE(m.find("plan.toml:2:8: source.a.type: cannot build test.refusing source: no such hardware"),
            std::string::npos) << m;
  EXPECT_NE(m.find("plan.toml:4:8: sink.b.type: cannot build test.throwing sink: factory threw: boom"),
            std::string::npos) << m;
}

TEST(ConfigPlan, SyntheticSourceAndNullSinkMoveMessages) {
  auto doc = doc_of(R"([source.gen]
type = "synthetic"
rate = 0
count = 100
keys = 3
size = 16
[sink.n]
type = "null"
)");
  auto plan = build_plan(*doc);
  ASSERT_TRUE(plan.ok()) << plan.error().message;
  adapter::Source& src = *plan->sources[0].source;
  adapter::Sink& sink = *plan->sinks[0].instances.at(0);
  EXPECT_EQ(src.type(), "synthetic");
  EXPECT_EQ(sink.type(), "null");
  ASSERT_TRUE(src.start().ok());
  ASSERT_TRUE(sink.start().ok());
  std::uint64_t expect_seq = 1;
  Burst<> burst;
  int polls = 0;
  while (!src.finished()) {
    ASSERT_LT(++polls, 1000) << "rate = 0 must produce on every poll";
    burst.clear();
    const std::size_t n = src.poll(burst);
    ASSERT_GT(n, 0u);
    ASSERT_EQ(burst.size(), n);
    for (const Message& m : burst) {
      ASSERT_EQ(m.size, 16u);
      std::uint64_t payload_seq = 0;
      for (int b = 0; b < 8; ++b) payload_seq |= static_cast<std::uint64_t>(m.data[b]) << (8 * b);
      EXPECT_EQ(payload_seq, expect_seq);
      EXPECT_EQ(m.sequence, expect_seq);
      EXPECT_EQ(m.key(), "K" + std::to_string((expect_seq - 1) % 3));
      EXPECT_EQ(m.key_hash, hash_bytes(m.key_data, m.key_size));
      EXPECT_EQ(m.source_id, 0);
      ++expect_seq;
    }
    EXPECT_EQ(sink.send(burst), n);
    src.release(burst);
  }
  EXPECT_EQ(expect_seq, 101u);
  burst.clear();
  EXPECT_EQ(src.poll(burst), 0u);  // count reached
  EXPECT_EQ(src.stats().messages, 100u);
  EXPECT_EQ(src.stats().bytes, 1600u);
  EXPECT_EQ(sink.stats().messages, 100u);
  EXPECT_EQ(sink.stats().bytes, 1600u);
  src.stop();
  sink.stop();
}

TEST(ConfigPlan, SyntheticSourceStopsWhenNothingIsReleased) {
  auto doc = doc_of("[source.gen]\ntype = \"synthetic\"\nrate = 0\n");
  auto plan = build_plan(*doc);
  ASSERT_TRUE(plan.ok()) << plan.error().message;
  adapter::Source& src = *plan->sources[0].source;
  ASSERT_TRUE(src.start().ok());
  // Without release() the payload ring runs out: poll() returns 0 instead of overwriting.
  std::uint64_t total = 0;
  Burst<> burst;
  for (int i = 0; i < 100'000; ++i) {
    burst.clear();
    const std::size_t n = src.poll(burst);
    if (n == 0) break;
    total += n;
  }
  EXPECT_GT(total, 0u);
  EXPECT_LT(total, 100'000u * Burst<>::capacity());
  burst.clear();
  EXPECT_EQ(src.poll(burst), 0u);
  EXPECT_FALSE(src.finished());  // unlimited count
  src.stop();
}

TEST(ConfigPlan, SyntheticSourceIsPacedByRate) {
  // 1 message per second: however often it is polled, the source never gets ahead of the clock.
  // (A bound derived from the measured elapsed time, not a timing assertion.)
  auto doc = doc_of("[source.gen]\ntype = \"synthetic\"\nrate = 1\n");
  auto plan = build_plan(*doc);
  ASSERT_TRUE(plan.ok()) << plan.error().message;
  adapter::Source& src = *plan->sources[0].source;
  const std::uint64_t begin = TscClock::monotonic_ns();
  ASSERT_TRUE(src.start().ok());
  std::uint64_t total = 0;
  Burst<> burst;
  for (int i = 0; i < 1000; ++i) {
    burst.clear();
    total += src.poll(burst);
    src.release(burst);
  }
  const std::uint64_t elapsed_s = (TscClock::monotonic_ns() - begin) / 1'000'000'000u;
  EXPECT_LE(total, elapsed_s + 1);
  src.stop();
}

}  // namespace
}  // namespace hypergate::gateway
