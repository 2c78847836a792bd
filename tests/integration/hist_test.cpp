// `hypergate hist`, the real binary, on interval logs written in-process by metrics::HistogramLogWriter
// from known seeded samples (ten 1 s intervals, two tags): the summary figures against
// HdrHistogram::value_at_percentile of the same samples, --tag, --start/--end, --csv, --unit,
// --expected-interval against the coordinated-omission arithmetic, the tables against HdrHistogram's
// own HistogramLogProcessor, --plot (well-formed XML, one path per series, axis titles) for one and
// two files, and every error path with its exit code.
#include <unistd.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <map>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "gateway_process.hpp"
#include "hypergate/metrics/hdr_histogram.hpp"
#include "hypergate/metrics/histogram_log.hpp"

namespace {

using hypergate::metrics::HdrHistogram;
using hypergate::test::GatewayProcess;

constexpr double kLogStartEpochS = 1'764'633'600.0;  // 2025-12-02 00:00:00 UTC
constexpr int kIntervals = 10;                       // 1 s each, offsets 0 s .. 9 s
constexpr int kSamplesPerInterval = 2'000;
const std::vector<std::string> kTags{"decode", "pipeline"};

struct Outcome {
  int exit_code = -1;
  std::string output;  // stdout and stderr
};

Outcome hist(std::vector<std::string> args) {
  args.insert(args.begin(), "hist");
  GatewayProcess gw(args);
  Outcome out;
  if (!gw.spawned()) {
    ADD_FAILURE() << "cannot start " << hypergate::test::kGatewayBinary;
    return out;
  }
  out.exit_code = gw.wait_exit();
  out.output = gw.output();
  return out;
}

#define EXPECT_OUTPUT_HAS(outcome, text) \
  EXPECT_NE((outcome).output.find(text), std::string::npos) << "missing \"" << (text) << "\" in:\n" << (outcome).output

// The recorded samples of one log: per tag, one histogram per interval.
using Recorded = std::map<std::string, std::vector<HdrHistogram>>;

// Merged intervals [first, last] of one tag.
HdrHistogram merged(const Recorded& r, const std::string& tag, int first = 0, int last = kIntervals - 1) {
  HdrHistogram h;
  for (int i = first; i <= last; ++i) EXPECT_EQ(h.merge(r.at(tag)[static_cast<std::size_t>(i)]), hypergate::Status::Ok);
  return h;
}

// The key=value fields of the summary line of (file, tag); empty if there is none.
std::map<std::string, std::string> summary_of(const std::string& output, const std::string& file,
                                              const std::string& tag) {
  std::map<std::string, std::string> fields;
  const std::string prefix = "summary file=" + file + " tag=" + tag + " ";
  const std::size_t at = output.find(prefix);
  if (at == std::string::npos) return fields;
  std::istringstream line(output.substr(at, output.find('\n', at) - at));
  for (std::string word; line >> word;) {
    const std::size_t eq = word.find('=');
    if (eq != std::string::npos) fields[word.substr(0, eq)] = word.substr(eq + 1);
  }
  return fields;
}

std::size_t occurrences(const std::string& text, const std::string& what) {
  std::size_t n = 0;
  for (std::size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + what.size())) ++n;
  return n;
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

class HistTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/hg_hist_test_XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    log_a_ = write_log("a.hlog", 1, recorded_a_);
    log_b_ = write_log("b.hlog", 2, recorded_b_);
  }
  void TearDown() override {
    for (const auto& f : files_) std::remove(f.c_str());
    rmdir(dir_.c_str());
  }

  // Ten intervals of both tags from seeded samples: decode around 3 us, pipeline around 13 us with a
  // tail of a few milliseconds (interval i of seed s is the same every run).
  std::string write_log(const std::string& name, std::uint64_t seed, Recorded& recorded) {
    const std::string path = track(name);
    auto writer = hypergate::metrics::HistogramLogWriter::open(path, kLogStartEpochS, "hist_test " + name);
    EXPECT_TRUE(writer.ok()) << (writer.ok() ? "" : writer.error().message);
    if (!writer.ok()) return path;
    std::mt19937_64 rng(seed);
    std::lognormal_distribution<double> decode(8.0, 0.6);
    std::lognormal_distribution<double> pipeline(9.5, 0.8);
    std::uniform_int_distribution<int> tail(0, 499);
    for (int i = 0; i < kIntervals; ++i) {
      for (const std::string& tag : kTags) {
        HdrHistogram h;
        for (int k = 0; k < kSamplesPerInterval; ++k) {
          double v = tag == "decode" ? decode(rng) : pipeline(rng);
          if (tag == "pipeline" && tail(rng) == 0) v += 2'000'000.0;  // 0.2% stalls of ~2 ms
          h.record(static_cast<std::uint64_t>(v));
        }
        EXPECT_TRUE(writer->write(tag, kLogStartEpochS + i, kLogStartEpochS + i + 1, h).ok());
        recorded[tag].push_back(std::move(h));
      }
    }
    EXPECT_TRUE(writer->close().ok());
    return path;
  }
  std::string track(const std::string& name) {
    const std::string path = dir_ + "/" + name;
    files_.push_back(path);
    return path;
  }
  std::string write(const std::string& name, const std::string& text) {
    const std::string path = track(name);
    std::ofstream(path) << text;
    return path;
  }

  std::string dir_;
  std::vector<std::string> files_;
  std::string log_a_, log_b_;
  Recorded recorded_a_, recorded_b_;
};

// ------------------------------------------------------------------------------------------------
// Tables and summary lines
// ------------------------------------------------------------------------------------------------
TEST_F(HistTest, SummaryFiguresAreValueAtPercentileOfTheSamples) {
  const Outcome r = hist({log_a_, "--unit", "ns"});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  for (const std::string& tag : kTags) {
    const HdrHistogram h = merged(recorded_a_, tag);
    const auto s = summary_of(r.output, log_a_, tag);
    ASSERT_FALSE(s.empty()) << "no summary line for " << tag << " in:\n" << r.output;
    EXPECT_EQ(s.at("unit"), "ns");
    EXPECT_EQ(s.at("count"), std::to_string(kIntervals * kSamplesPerInterval));
    EXPECT_EQ(s.at("min"), std::to_string(h.lowest_equivalent_value(h.min())));
    EXPECT_EQ(s.at("p50"), std::to_string(h.value_at_percentile(50)));
    EXPECT_EQ(s.at("p90"), std::to_string(h.value_at_percentile(90)));
    EXPECT_EQ(s.at("p99"), std::to_string(h.value_at_percentile(99)));
    EXPECT_EQ(s.at("p99.9"), std::to_string(h.value_at_percentile(99.9)));
    EXPECT_EQ(s.at("p99.99"), std::to_string(h.value_at_percentile(99.99)));
    EXPECT_EQ(s.at("max"), std::to_string(h.highest_equivalent_value(h.max())));
    EXPECT_NEAR(std::stod(s.at("mean")), h.mean(), 0.5);
  }
  // The .hgrm table with its footer, once per tag, then the comparison of the two tags.
  EXPECT_EQ(occurrences(r.output, "1/(1-Percentile)"), 2u) << r.output;
  EXPECT_EQ(occurrences(r.output, "#[Max     ="), 2u) << r.output;
  EXPECT_OUTPUT_HAS(r, "Comparison (values in ns):");
  const std::size_t table = r.output.find("Comparison");
  EXPECT_NE(r.output.find(log_a_ + "  decode", table), std::string::npos) << r.output;
  EXPECT_NE(r.output.find(log_a_ + "  pipeline", table), std::string::npos) << r.output;
}

TEST_F(HistTest, DefaultUnitIsMicrosecondsWithExactDecimals) {
  const Outcome r = hist({log_a_, "--tag", "pipeline"});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const HdrHistogram h = merged(recorded_a_, "pipeline");
  const auto s = summary_of(r.output, log_a_, "pipeline");
  ASSERT_FALSE(s.empty()) << r.output;
  EXPECT_EQ(s.at("unit"), "us");
  char expected[64];
  std::snprintf(expected, sizeof expected, "%.3f", static_cast<double>(h.value_at_percentile(99.9)) / 1e3);
  EXPECT_EQ(s.at("p99.9"), expected);
  EXPECT_OUTPUT_HAS(r, "values in us");

  const Outcome ms = hist({log_a_, "--tag", "pipeline", "--unit", "ms"});
  ASSERT_EQ(ms.exit_code, 0) << ms.output;
  std::snprintf(expected, sizeof expected, "%.6f", static_cast<double>(h.value_at_percentile(99.9)) / 1e6);
  EXPECT_EQ(summary_of(ms.output, log_a_, "pipeline").at("p99.9"), expected);
}

TEST_F(HistTest, TagSelectsTheTagsToShow) {
  const Outcome one = hist({log_a_, "--tag", "decode"});
  ASSERT_EQ(one.exit_code, 0) << one.output;
  EXPECT_FALSE(summary_of(one.output, log_a_, "decode").empty()) << one.output;
  EXPECT_TRUE(summary_of(one.output, log_a_, "pipeline").empty()) << one.output;
  EXPECT_EQ(occurrences(one.output, "summary file="), 1u);
  EXPECT_EQ(one.output.find("Comparison"), std::string::npos) << "one group: no comparison table";

  const Outcome both = hist({log_a_, "--tag", "pipeline", "--tag", "decode"});
  ASSERT_EQ(both.exit_code, 0) << both.output;
  EXPECT_EQ(occurrences(both.output, "summary file="), 2u);
}

TEST_F(HistTest, StartAndEndSelectIntervalsByTheirOffsetIntoTheLog) {
  // Intervals start 0 s .. 9 s into the log: [3s, 5s] keeps 3, 4 and 5.
  const Outcome r = hist({log_a_, "--tag", "decode", "--start", "3s", "--end", "5s", "--unit", "ns"});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const auto s = summary_of(r.output, log_a_, "decode");
  ASSERT_FALSE(s.empty()) << r.output;
  EXPECT_EQ(s.at("count"), std::to_string(3 * kSamplesPerInterval));
  const HdrHistogram h = merged(recorded_a_, "decode", 3, 5);
  EXPECT_EQ(s.at("p50"), std::to_string(h.value_at_percentile(50)));
  EXPECT_EQ(s.at("p99"), std::to_string(h.value_at_percentile(99)));
  EXPECT_OUTPUT_HAS(r, "3 intervals starting 3.000 s .. 5.000 s");

  const Outcome from = hist({log_a_, "--tag", "decode", "--start", "7000ms"});
  ASSERT_EQ(from.exit_code, 0) << from.output;
  EXPECT_EQ(summary_of(from.output, log_a_, "decode").at("count"), std::to_string(3 * kSamplesPerInterval));

  const Outcome until = hist({log_a_, "--tag", "decode", "--end", "0s"});
  ASSERT_EQ(until.exit_code, 0) << until.output;
  EXPECT_EQ(summary_of(until.output, log_a_, "decode").at("count"), std::to_string(kSamplesPerInterval));

  const Outcome none = hist({log_a_, "--start", "1m"});
  EXPECT_EQ(none.exit_code, 1) << none.output;
  EXPECT_OUTPUT_HAS(none, "no interval starts between 1m and the end");
}

TEST_F(HistTest, CsvRowsParseAndAreMonotonicPerTag) {
  const Outcome r = hist({log_a_, "--csv", "--unit", "ns"});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  std::istringstream lines(r.output);
  std::string line;
  ASSERT_TRUE(std::getline(lines, line));
  EXPECT_EQ(line, "file,tag,value,percentile,total_count,inverse");
  struct Last {
    double value = -1, percentile = -1;
    long long count = -1;
    std::size_t rows = 0;
    std::string inverse;
  };
  std::map<std::string, Last> last;
  while (std::getline(lines, line)) {
    std::vector<std::string> f;
    std::stringstream fields(line);
    for (std::string x; std::getline(fields, x, ',');) f.push_back(x);
    ASSERT_EQ(f.size(), 6u) << line;
    EXPECT_EQ(f[0], log_a_);
    ASSERT_TRUE(f[1] == "decode" || f[1] == "pipeline") << line;
    Last& l = last[f[1]];
    const double value = std::stod(f[2]);
    const double percentile = std::stod(f[3]);
    const long long count = std::stoll(f[4]);
    EXPECT_GE(value, l.value) << line;
    EXPECT_GE(percentile, l.percentile) << line;
    EXPECT_GE(count, l.count) << line;
    EXPECT_TRUE(f[5] == "inf" || std::stod(f[5]) >= 1.0) << line;
    l = Last{value, percentile, count, l.rows + 1, f[5]};
  }
  ASSERT_EQ(last.size(), 2u);
  for (const auto& [tag, l] : last) {
    const HdrHistogram h = merged(recorded_a_, tag);
    EXPECT_GT(l.rows, 20u) << tag;
    EXPECT_EQ(l.percentile, 1.0) << tag;
    EXPECT_EQ(l.inverse, "inf") << tag;
    EXPECT_EQ(l.count, static_cast<long long>(kIntervals * kSamplesPerInterval)) << tag;
    EXPECT_EQ(l.value, static_cast<double>(h.value_at_percentile(100))) << tag;
  }
  EXPECT_EQ(r.output.find("summary"), std::string::npos) << "--csv prints the rows instead of the tables";
}

// The judge: HdrHistogram's own HistogramLogProcessor (Debian's libhdrhistogram-java, installed by
// scripts/setup.sh) on the same log must print the same table, row for row and byte for byte, for
// the whole log and for a --start/--end window. Fails (never skips) without java or the jar.
std::string hdrhistogram_jar() {
  for (const char* p : {"/usr/share/java/hdrhistogram.jar", "/usr/share/java/HdrHistogram.jar",
                        "/usr/share/java/hdrhistogram-2.1.11.jar"}) {
    if (access(p, R_OK) == 0) return p;
  }
  return {};
}

// The .hgrm table of (file, tag) in our output: from the column header to the #[Buckets ...] footer.
std::string our_table(const std::string& output, const std::string& file, const std::string& tag) {
  const std::size_t section = output.find("# " + file + " tag " + tag + ":");
  if (section == std::string::npos) return {};
  const std::size_t from = output.find('\n', section) + 1;
  const std::size_t footer = output.find("#[Buckets", from);
  return footer == std::string::npos ? std::string() : output.substr(from, output.find('\n', footer) + 1 - from);
}

TEST_F(HistTest, TablesAreHistogramLogProcessorsRowForRow) {
  const std::string jar = hdrhistogram_jar();
  ASSERT_FALSE(jar.empty()) << "HdrHistogram jar not in /usr/share/java: run scripts/setup.sh (libhdrhistogram-java)";
  ASSERT_EQ(std::system("command -v java >/dev/null 2>&1"), 0) << "java not on PATH: run scripts/setup.sh";
  struct Case {
    std::vector<std::string> ours;
    std::string java;
  };
  const std::vector<Case> cases{{{}, ""}, {{"--start", "3s", "--end", "5s"}, " -start 3 -end 5"},
                                {{"--ticks", "2", "--unit", "ns"}, " -percentilesOutputTicksPerHalf 2"}};
  for (const Case& c : cases) {
    for (const std::string& tag : kTags) {
      const std::string prefix = dir_ + "/java_" + tag;
      track("java_" + tag + ".hgrm");
      track("java_" + tag);
      const std::string ratio = std::find(c.ours.begin(), c.ours.end(), "ns") != c.ours.end() ? "1" : "1000";
      const std::string cmd = "java -cp " + jar + " org.HdrHistogram.HistogramLogProcessor -i " + log_a_ + " -tag " +
                              tag + " -outputValueUnitRatio " + ratio + c.java + " -o " + prefix + " >/dev/null 2>&1";
      ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
      // HistogramLogProcessor opens with two comment lines (range and StartTime); the table follows.
      std::string java = read_file(prefix + ".hgrm");
      for (int i = 0; i < 2; ++i) java.erase(0, java.find('\n') + 1);
      std::vector<std::string> args{log_a_, "--tag", tag};
      args.insert(args.end(), c.ours.begin(), c.ours.end());
      const Outcome r = hist(args);
      ASSERT_EQ(r.exit_code, 0) << r.output;
      EXPECT_EQ(our_table(r.output, log_a_, tag), java) << tag << c.java;
    }
  }
}

// ------------------------------------------------------------------------------------------------
// Coordinated-omission correction
// ------------------------------------------------------------------------------------------------
TEST_F(HistTest, ExpectedIntervalAddsTheMissedSamples) {
  constexpr std::uint64_t kInterval = 10'000;  // 10 us
  const HdrHistogram h = merged(recorded_a_, "pipeline");
  // Each recorded bucket (value v = its highest equivalent value, count c) stands for c samples of v,
  // corrected to v, v - D, v - 2D, ... >= D: max(1, floor(v / D)) samples each.
  std::uint64_t expected_count = 0;
  for (const auto& b : h.recorded()) expected_count += b.count * std::max<std::uint64_t>(1, b.highest_value / kInterval);
  ASSERT_GT(expected_count, h.total_count()) << "the samples must include some longer than the interval";
  const HdrHistogram corrected = hypergate::metrics::copy_corrected_for_coordinated_omission(h, kInterval);
  ASSERT_EQ(corrected.total_count(), expected_count);

  const Outcome r = hist({log_a_, "--tag", "pipeline", "--expected-interval", "10us", "--unit", "ns"});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const auto s = summary_of(r.output, log_a_, "pipeline");
  ASSERT_FALSE(s.empty()) << r.output;
  EXPECT_EQ(s.at("count"), std::to_string(expected_count));
  EXPECT_EQ(s.at("p99"), std::to_string(corrected.value_at_percentile(99)));
  EXPECT_GT(std::stoull(s.at("p90")), h.value_at_percentile(90)) << "the correction raises the tail";
  EXPECT_OUTPUT_HAS(r, "corrected for coordinated omission");
}

// ------------------------------------------------------------------------------------------------
// Plots
// ------------------------------------------------------------------------------------------------
bool well_formed_xml(const std::string& path) {
  const std::string cmd = "python3 -c 'import xml.dom.minidom,sys; xml.dom.minidom.parse(sys.argv[1])' '" + path + "'";
  return std::system(cmd.c_str()) == 0;
}

TEST_F(HistTest, PlotIsWellFormedSvgWithOnePathPerTagAndAxisTitles) {
  const std::string svg_path = track("one.svg");
  const Outcome r = hist({log_a_, "--plot", svg_path});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_OUTPUT_HAS(r, "wrote " + svg_path + " (2 series)");
  EXPECT_FALSE(summary_of(r.output, log_a_, "decode").empty()) << "the tables are still printed";
  const std::string svg = read_file(svg_path);
  ASSERT_FALSE(svg.empty());
  EXPECT_TRUE(well_formed_xml(svg_path)) << svg;
  EXPECT_EQ(occurrences(svg, "<path class=\"series\""), 2u);
  EXPECT_NE(svg.find("data-name=\"decode\""), std::string::npos);
  EXPECT_NE(svg.find("data-name=\"pipeline\""), std::string::npos);
  EXPECT_NE(svg.find(">Percentile</text>"), std::string::npos);
  EXPECT_NE(svg.find(">Latency ("), std::string::npos);
  EXPECT_EQ(occurrences(svg, "<circle class=\"max\""), 2u);
  // 20,000 samples per tag: the nines axis reaches 99.999%.
  EXPECT_NE(svg.find(">99.999%<"), std::string::npos);
}

TEST_F(HistTest, TwoFilesGiveOneSeriesPerFileAndTagAndACombinedComparison) {
  const std::string svg_path = track("two.svg");
  const Outcome r = hist({log_a_, log_b_, "--plot", svg_path, "--unit", "us"});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const std::string svg = read_file(svg_path);
  EXPECT_TRUE(well_formed_xml(svg_path)) << svg;
  EXPECT_EQ(occurrences(svg, "<path class=\"series\""), 4u);
  for (const std::string& file : {log_a_, log_b_}) {
    for (const std::string& tag : kTags) {
      EXPECT_NE(svg.find("data-name=\"" + file + ":" + tag + "\""), std::string::npos) << file << ":" << tag;
      EXPECT_FALSE(summary_of(r.output, file, tag).empty()) << file << " " << tag;
    }
  }
  EXPECT_NE(svg.find(">Latency (\u00b5s)"), std::string::npos) << "--unit us applies to the plot";
  // The two runs differ (different seeds), and each summary is its own file's.
  const HdrHistogram b = merged(recorded_b_, "decode");
  char expected[64];
  std::snprintf(expected, sizeof expected, "%.3f", static_cast<double>(b.value_at_percentile(99)) / 1e3);
  EXPECT_EQ(summary_of(r.output, log_b_, "decode").at("p99"), expected);
  const std::size_t table = r.output.find("Comparison (values in us):");
  ASSERT_NE(table, std::string::npos) << r.output;
  EXPECT_EQ(occurrences(r.output.substr(table), "\n"), 6u) << "title, header and 4 rows:\n" << r.output.substr(table);
}

TEST_F(HistTest, UntaggedIntervalsAreTheirOwnGroupSelectedWithAnEmptyTag) {
  const std::string path = track("untagged.hlog");
  {
    auto writer = hypergate::metrics::HistogramLogWriter::open(path, kLogStartEpochS);
    ASSERT_TRUE(writer.ok()) << writer.error().message;
    HdrHistogram h;
    for (std::uint64_t v = 1; v <= 1'000; ++v) h.record(v * 100);
    ASSERT_TRUE(writer->write("", kLogStartEpochS, kLogStartEpochS + 1, h).ok());
    ASSERT_TRUE(writer->write("decode", kLogStartEpochS, kLogStartEpochS + 1, h).ok());
    ASSERT_TRUE(writer->write("", kLogStartEpochS + 1, kLogStartEpochS + 2, h).ok());
    ASSERT_TRUE(writer->close().ok());
  }
  const Outcome all = hist({path, "--unit", "ns"});
  ASSERT_EQ(all.exit_code, 0) << all.output;
  EXPECT_EQ(summary_of(all.output, path, "(untagged)").at("count"), "2000");
  EXPECT_EQ(summary_of(all.output, path, "decode").at("count"), "1000");

  const std::string svg_path = track("untagged.svg");
  const Outcome only = hist({path, "--tag", "", "--plot", svg_path});
  ASSERT_EQ(only.exit_code, 0) << only.output;
  EXPECT_EQ(occurrences(only.output, "summary file="), 1u) << only.output;
  EXPECT_FALSE(summary_of(only.output, path, "(untagged)").empty()) << only.output;
  EXPECT_NE(read_file(svg_path).find("data-name=\"(untagged)\""), std::string::npos);

  const Outcome missing = hist({path, "--tag", "tx"});
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_OUTPUT_HAS(missing, "tags present: (untagged), decode");
}

// ------------------------------------------------------------------------------------------------
// Errors and exit codes
// ------------------------------------------------------------------------------------------------
TEST_F(HistTest, AMissingOrMalformedFileIsARuntimeErrorNamingFileAndLine) {
  const std::string missing = dir_ + "/nope.hlog";
  const Outcome m = hist({missing});
  EXPECT_EQ(m.exit_code, 1) << m.output;
  EXPECT_OUTPUT_HAS(m, missing);

  const std::string bad = write("bad.hlog",
                                "#[StartTime: 1764633600.000 (seconds since epoch), Tue Dec 02 00:00:00 UTC 2025]\n"
                                "\"StartTimestamp\",\"Interval_Length\",\"Interval_Max\",\"Interval_Compressed_Histogram\"\n"
                                "0.000,1.000,1.000,this-is-not-a-histogram\n");
  const Outcome b = hist({bad});
  EXPECT_EQ(b.exit_code, 1) << b.output;
  EXPECT_OUTPUT_HAS(b, bad);
  EXPECT_OUTPUT_HAS(b, "line 3");

  // A good file before a bad one prints nothing to stdout: the error comes alone.
  const Outcome mixed = hist({log_a_, bad});
  EXPECT_EQ(mixed.exit_code, 1) << mixed.output;
  EXPECT_EQ(mixed.output.find("summary"), std::string::npos) << mixed.output;
}

TEST_F(HistTest, ATagThatMatchesNothingListsTheTagsPresent) {
  const Outcome r = hist({log_a_, "--tag", "decode", "--tag", "tx"});
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_OUTPUT_HAS(r, "--tag tx matches no interval");
  EXPECT_OUTPUT_HAS(r, "tags present: decode, pipeline");
}

TEST_F(HistTest, BadOptionsAreUsageErrors) {
  EXPECT_EQ(hist({}).exit_code, 2) << "FILE is required";
  for (const std::vector<std::string>& args : std::vector<std::vector<std::string>>{
           {log_a_, "--start", "soon"},
           {log_a_, "--end", "5 parsecs"},
           {log_a_, "--start", "5s", "--end", "2s"},
           {log_a_, "--expected-interval", "fast"},
           {log_a_, "--expected-interval", "0"},
           {log_a_, "--unit", "s"},
           {log_a_, "--ticks", "0"},
           {log_a_, "--ticks", "many"},
       }) {
    const Outcome r = hist(args);
    EXPECT_EQ(r.exit_code, 2) << args[1] << " " << args[2] << ":\n" << r.output;
    EXPECT_NE(r.output.find(args[1]), std::string::npos) << "the message names the option:\n" << r.output;
  }
  // A usage error is found before any file is read.
  EXPECT_EQ(hist({dir_ + "/nope.hlog", "--unit", "parsecs"}).exit_code, 2);
}

TEST_F(HistTest, APlotThatCannotBeWrittenIsARuntimeError) {
  const std::string unwritable = dir_ + "/no/such/dir/plot.svg";
  const Outcome r = hist({log_a_, "--plot", unwritable});
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_OUTPUT_HAS(r, unwritable);
}

}  // namespace
