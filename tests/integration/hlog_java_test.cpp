// Interval logs against the judge: Debian's libhdrhistogram-java (HdrHistogram 2.1.11), both ways.
//  (a) our HistogramLogWriter writes a tagged log; HdrHistogram's HistogramLogProcessor reads it and
//      its percentile distribution must agree with our merged histograms (same buckets, same counts).
//  (b) HdrHistogram's own HistogramLogWriter (tests/integration/java/HlogWriterProgram.java, compiled
//      here with javac) writes a log; read_histogram_log must give the figures Java printed.
// Needs java, javac (scripts/setup.sh: default-jdk-headless) and the jar; without them the tests
// FAIL with a message saying so (they never skip).
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "hypergate/metrics/histogram_log.hpp"

namespace hm = hypergate::metrics;
using hm::HdrHistogram;
namespace fs = std::filesystem;

namespace {

constexpr double kStartEpochS = 1700000000.0;

/// Debian installs the jar as hdrhistogram.jar (and a versioned link); HdrHistogram.jar is accepted too.
std::string find_jar() {
  for (const char* p : {"/usr/share/java/hdrhistogram.jar", "/usr/share/java/HdrHistogram.jar",
                        "/usr/share/java/hdrhistogram-2.1.11.jar"}) {
    if (fs::exists(p)) return p;
  }
  return {};
}

bool on_path(const std::string& tool) {
  return std::system(("command -v " + tool + " >/dev/null 2>&1").c_str()) == 0;
}

struct TempDir {
  fs::path path;
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "hg_hlog_java_XXXXXX").string();
    path = ::mkdtemp(tmpl.data());
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
};

struct CommandResult {
  int exit_code = -1;
  std::string out;
};

/// Runs a shell command, returns its exit code and stdout; stderr goes to `err_file` for messages.
CommandResult run(const std::string& cmd, const fs::path& err_file) {
  CommandResult r;
  std::FILE* p = ::popen((cmd + " 2>" + err_file.string()).c_str(), "r");
  if (p == nullptr) return r;
  char buf[4096];
  std::size_t n = 0;
  while ((n = std::fread(buf, 1, sizeof buf, p)) != 0) r.out.append(buf, n);
  const int status = ::pclose(p);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

std::string slurp(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

/// The java toolchain or a clear failure.
struct Java {
  std::string jar;
  bool ok = false;
  Java() {
    jar = find_jar();
    if (!on_path("java")) {
      ADD_FAILURE() << "java not found on PATH: run scripts/setup.sh (default-jre-headless, default-jdk-headless)";
      return;
    }
    if (jar.empty()) {
      ADD_FAILURE() << "HdrHistogram jar not found in /usr/share/java: run scripts/setup.sh (libhdrhistogram-java)";
      return;
    }
    ok = true;
  }
};

/// Compiles tests/integration/java/<program>.java into <dir>/classes with javac; returns the class
/// directory, or an empty path after recording a failure that says why.
fs::path compile_java_program(const Java& java, const fs::path& dir, const std::string& program) {
  if (!on_path("javac")) {
    ADD_FAILURE() << "javac not found on PATH: run scripts/setup.sh (default-jdk-headless)";
    return {};
  }
  const fs::path classes = dir / "classes";
  fs::create_directories(classes);
  const fs::path source = fs::path(HG_SOURCE_DIR) / "tests/integration/java" / (program + ".java");
  const fs::path err = dir / "javac.err";
  const int rc = run("javac -d " + classes.string() + " -cp " + java.jar + " " + source.string(), err).exit_code;
  if (rc != 0) {
    ADD_FAILURE() << "javac " << source << " failed:\n" << slurp(err);
    return {};
  }
  return classes;
}

/// One row of HdrHistogram's outputPercentileDistribution.
struct Row {
  double value = 0;
  double fraction = 0;
  std::uint64_t cumulative = 0;
};

struct Distribution {
  std::vector<Row> rows;
  std::uint64_t total = 0;  // from "#[Max = ..., Total count = N]"
  double max = 0;
  bool has_footer = false;
};

/// Parses the .hgrm text (csv = false) or the -csv form.
Distribution parse_distribution(const std::string& text, bool csv) {
  Distribution d;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    if (line.rfind("#[Max", 0) == 0) {
      // #[Max     = 2501902335.000, Total count    =       128762]
      const auto eq1 = line.find('=');
      const auto comma = line.find(',', eq1);
      const auto eq2 = line.find('=', comma);
      d.max = std::stod(line.substr(eq1 + 1, comma - eq1 - 1));
      d.total = std::stoull(line.substr(eq2 + 1));
      d.has_footer = true;
      continue;
    }
    if (line[0] == '#' || line[0] == '"' || line.find("Value") != std::string::npos) continue;
    if (csv) {
      for (char& c : line) c = c == ',' ? ' ' : c;
    }
    std::istringstream fields(line);
    Row r;
    if (fields >> r.value >> r.fraction >> r.cumulative) d.rows.push_back(r);
  }
  return d;
}

/// Lognormal-ish nanosecond latencies around `median`, seeded.
void fill(HdrHistogram& h, std::size_t n, double median, double sigma, std::mt19937_64& rng) {
  std::lognormal_distribution<double> dist(std::log(median), sigma);
  for (std::size_t i = 0; i < n; ++i) {
    const double v = dist(rng);
    h.record(v >= 1e15 ? 1'000'000'000'000'000ULL : static_cast<std::uint64_t>(v));
  }
}

struct TagPlan {
  std::string tag;        // "" = untagged
  std::uint64_t lowest;
  std::uint64_t highest;
  int digits;
  std::size_t samples_per_interval;
  double median_ns;
};

}  // namespace

// ------------------------------------------------------------------------------------------- (a)
TEST(HlogJava, HistogramLogProcessorReadsOurLog) {
  Java java;
  ASSERT_TRUE(java.ok);
  TempDir dir;
  const fs::path log_path = dir.path / "ours.hlog";
  const std::vector<TagPlan> plans = {
      {"rx", 1, HdrHistogram::kDefaultHighest, 3, 125'000, 25'000.0},       // 1M samples in all
      {"pipeline", 1, HdrHistogram::kDefaultHighest, 3, 5'000, 800.0},
      {"wire", 1000, 100'000'000'000ULL, 2, 20'000, 400'000.0},              // another layout
      {"", 1, 10'000'000'000ULL, 4, 3'000, 3'000.0},                        // untagged
  };
  constexpr int kIntervals = 8;
  std::map<std::string, HdrHistogram> merged;
  {
    auto w = hm::HistogramLogWriter::open(log_path.string(), kStartEpochS, "Logged by hlog_java_test");
    ASSERT_TRUE(w.ok()) << w.error().message;
    std::mt19937_64 rng(20261202);
    for (int i = 0; i < kIntervals; ++i) {
      for (const TagPlan& p : plans) {
        HdrHistogram h = HdrHistogram::create(p.lowest, p.highest, p.digits).value();
        fill(h, p.samples_per_interval, p.median_ns, 1.2, rng);
        if (p.tag == "rx" && i == 5) h.record(3'000'000'000);  // one 3 s stall
        const double start = kStartEpochS + i;
        ASSERT_TRUE(w->write(p.tag, start, start + 1.0, h).ok());
        auto [it, fresh] = merged.try_emplace(p.tag, h);
        if (!fresh) {
          ASSERT_EQ(it->second.merge(h), hypergate::Status::Ok);
        }
      }
    }
    ASSERT_TRUE(w->close().ok());
  }
  ASSERT_EQ(merged.at("rx").total_count(), 1'000'001u);

  for (const TagPlan& p : plans) {
    SCOPED_TRACE("tag '" + p.tag + "'");
    const HdrHistogram& ours = merged.at(p.tag);
    Distribution forms[2];
    for (const bool csv : {false, true}) {
      std::string cmd = "java -cp " + java.jar + " org.HdrHistogram.HistogramLogProcessor -i " + log_path.string() +
                        " -outputValueUnitRatio 1";
      if (!p.tag.empty()) cmd += " -tag " + p.tag;
      if (csv) cmd += " -csv";
      const fs::path err = dir.path / "processor.err";
      const CommandResult r = run(cmd, err);
      ASSERT_EQ(r.exit_code, 0) << cmd << "\n" << slurp(err);
      Distribution d = parse_distribution(r.out, csv);
      ASSERT_FALSE(d.rows.empty()) << "no percentile rows from: " << cmd << "\n" << r.out << slurp(err);
      forms[csv ? 1 : 0] = std::move(d);
    }
    const Distribution& java_dist = forms[0];

    // Totals: exact.
    ASSERT_TRUE(java_dist.has_footer) << "no '#[Max = ..., Total count = ...]' footer";
    EXPECT_EQ(java_dist.total, ours.total_count());
    EXPECT_EQ(java_dist.rows.back().cumulative, ours.total_count());
    EXPECT_EQ(static_cast<std::uint64_t>(java_dist.max), ours.highest_equivalent_value(ours.max()));

    // Every row: our value at that percentile lies in the bucket Java printed.
    std::size_t mismatches = 0;
    for (const Row& row : java_dist.rows) {
      const std::uint64_t v = ours.value_at_percentile(row.fraction * 100.0);
      const auto java_value = static_cast<std::uint64_t>(std::llround(row.value));
      if (!ours.values_are_equivalent(v, java_value)) {
        ++mismatches;
        ADD_FAILURE() << "percentile " << row.fraction * 100.0 << ": Java " << java_value << ", ours " << v;
      }
    }
    EXPECT_EQ(mismatches, 0u);

    // Row by row against our own percentile iteration (HdrHistogram's PercentileIterator, 5 ticks).
    std::vector<hm::PercentileStep> steps;
    for (const hm::PercentileStep& s : ours.percentiles(5)) steps.push_back(s);
    ASSERT_EQ(steps.size(), java_dist.rows.size());
    for (std::size_t i = 0; i < steps.size(); ++i) {
      EXPECT_EQ(steps[i].value, static_cast<std::uint64_t>(std::llround(java_dist.rows[i].value))) << "row " << i;
      EXPECT_EQ(steps[i].cumulative_count, java_dist.rows[i].cumulative) << "row " << i;
      EXPECT_NEAR(steps[i].percentile / 100.0, java_dist.rows[i].fraction, 1e-12) << "row " << i;
    }

    // The -csv form carries the same rows.
    const Distribution& csv = forms[1];
    ASSERT_EQ(csv.rows.size(), java_dist.rows.size());
    for (std::size_t i = 0; i < csv.rows.size(); ++i) {
      EXPECT_EQ(csv.rows[i].value, java_dist.rows[i].value);
      EXPECT_EQ(csv.rows[i].fraction, java_dist.rows[i].fraction);
      EXPECT_EQ(csv.rows[i].cumulative, java_dist.rows[i].cumulative);
    }
    for (const Row& row : java_dist.rows) {
      if (row.fraction == 0.5 || row.fraction == 0.990234375) {
        std::printf("[ info ] tag '%s' %.9f: Java %.0f (cumulative %llu), ours value_at_percentile %llu\n",
                    p.tag.c_str(), row.fraction, row.value, static_cast<unsigned long long>(row.cumulative),
                    static_cast<unsigned long long>(ours.value_at_percentile(row.fraction * 100.0)));
      }
    }
    std::printf("[ info ] tag '%s': Java max %.0f total %llu; ours max %llu total %llu\n", p.tag.c_str(), java_dist.max,
                static_cast<unsigned long long>(java_dist.total),
                static_cast<unsigned long long>(ours.highest_equivalent_value(ours.max())),
                static_cast<unsigned long long>(ours.total_count()));
  }
}

// ------------------------------------------------------------------------------------------- (b)
TEST(HlogJava, WeReadHistogramLogWritersLog) {
  Java java;
  ASSERT_TRUE(java.ok);
  TempDir dir;
  const fs::path classes = compile_java_program(java, dir.path, "HlogWriterProgram");
  ASSERT_FALSE(classes.empty());
  const fs::path err = dir.path / "java.err";

  const fs::path log_path = dir.path / "java.hlog";
  const CommandResult r = run("java -cp " + java.jar + ":" + classes.string() + " HlogWriterProgram " + log_path.string() + " 7",
                    err);
  ASSERT_EQ(r.exit_code, 0) << "HlogWriterProgram failed:\n" << slurp(err);

  struct Figures {
    std::uint64_t count = 0, p50 = 0, p90 = 0, p99 = 0, p999 = 0, max = 0;
  };
  std::map<std::string, Figures> java_figures;
  std::istringstream lines(r.out);
  std::string line;
  while (std::getline(lines, line)) {
    // tag=<tag> count=<n> p50=<v> p90=<v> p99=<v> p999=<v> max=<v>
    const auto space = line.find(' ');
    ASSERT_TRUE(line.rfind("tag=", 0) == 0 && space != std::string::npos) << line;
    Figures f;
    unsigned long long c = 0, a = 0, b = 0, d = 0, e = 0, m = 0;
    ASSERT_EQ(std::sscanf(line.c_str() + space, " count=%llu p50=%llu p90=%llu p99=%llu p999=%llu max=%llu", &c, &a, &b,
                          &d, &e, &m),
              6)
        << line;
    f = {c, a, b, d, e, m};
    java_figures[line.substr(4, space - 4)] = f;
  }
  ASSERT_EQ(java_figures.size(), 3u) << r.out;

  auto log = hm::read_histogram_log(log_path.string());
  ASSERT_TRUE(log.ok()) << log.error().message;
  EXPECT_EQ(log->start_time_s, kStartEpochS);
  EXPECT_EQ(log->base_time_s, kStartEpochS);
  ASSERT_EQ(log->intervals.size(), 18u);  // 6 intervals x 3 tags
  std::map<std::string, HdrHistogram> merged;
  std::map<std::string, int> seen;
  for (const hm::LogInterval& in : log->intervals) {
    const int k = seen[in.tag]++;
    EXPECT_NEAR(in.start_s, kStartEpochS + k + 0.25, 1e-6) << in.tag;
    EXPECT_NEAR(in.length_s, 1.0, 1e-9);
    auto [it, fresh] = merged.try_emplace(in.tag, in.histogram);
    if (!fresh) {
      ASSERT_EQ(it->second.merge(in.histogram), hypergate::Status::Ok);
    }
  }
  EXPECT_EQ(merged.at("wire").lowest_discernible_value(), 1000u);
  EXPECT_EQ(merged.at("wire").significant_digits(), 2);

  for (const auto& [tag, f] : java_figures) {
    SCOPED_TRACE("tag '" + tag + "'");
    ASSERT_TRUE(merged.count(tag)) << "no intervals tagged '" << tag << "' in the log";
    const HdrHistogram& h = merged.at(tag);
    EXPECT_EQ(h.total_count(), f.count);
    EXPECT_EQ(h.value_at_percentile(50.0), f.p50);
    EXPECT_EQ(h.value_at_percentile(90.0), f.p90);
    EXPECT_EQ(h.value_at_percentile(99.0), f.p99);
    EXPECT_EQ(h.value_at_percentile(99.9), f.p999);
    EXPECT_EQ(h.max(), f.max);
    std::printf("[ info ] tag '%s': Java count=%llu p50=%llu p99.9=%llu max=%llu | ours count=%llu p50=%llu p99.9=%llu "
                "max=%llu\n",
                tag.c_str(), static_cast<unsigned long long>(f.count), static_cast<unsigned long long>(f.p50),
                static_cast<unsigned long long>(f.p999), static_cast<unsigned long long>(f.max),
                static_cast<unsigned long long>(h.total_count()),
                static_cast<unsigned long long>(h.value_at_percentile(50.0)),
                static_cast<unsigned long long>(h.value_at_percentile(99.9)),
                static_cast<unsigned long long>(h.max()));
  }
}

// End to end: `hypergate replay` of a generated capture at a fixed rate (2000 datagrams/s) writes a
// per-stage interval log; HdrHistogram's reader takes it, and `hypergate hist --expected-interval`
// (coordinated-omission correction) gives exactly what HdrHistogram's copyCorrectedForCoordinatedOmission
// gives over the same intervals — at the feed's real interval (500 us) and at 1 us, where nearly every
// sample is corrected (so the corrected count must exceed the raw one). The log also holds every stage
// the replay reported at exit, with the same counts.
TEST(HlogJava, FixedRateReplayLogIsCorrectedAsHdrHistogramCorrectsIt) {
  Java java;
  ASSERT_TRUE(java.ok);
  TempDir dir;
  const fs::path err = dir.path / "cmd.err";
  const std::string bin = std::string(HG_BINARY_DIR) + "/framework/gateway/hypergate";
  const fs::path cap = dir.path / "feed.pcap";
  const fs::path log_path = dir.path / "replay.hlog";
  CommandResult g = run(bin + " gen itch --out " + cap.string() + " --messages 20000 --symbol-count 8 --seed 3", err);
  ASSERT_EQ(g.exit_code, 0) << slurp(err);
  CommandResult rp = run(bin + " replay " + cap.string() + " --speed 2000pps --hlog " + log_path.string() +
                             " --hlog-interval 100ms --trace-every 1 -q",
                         err);
  ASSERT_EQ(rp.exit_code, 0) << rp.out << slurp(err);

  // Stage counts from the exit table ("wire   1352   8565 ...").
  std::map<std::string, std::uint64_t> exit_counts;
  {
    std::istringstream lines(rp.out);
    std::string line;
    bool in_table = false;
    while (std::getline(lines, line)) {
      if (line.rfind("stage ", 0) == 0) {
        in_table = true;
        continue;
      }
      if (!in_table) continue;
      std::istringstream f(line);
      std::string name;
      std::uint64_t count = 0;
      if (!(f >> name >> count)) break;
      exit_counts[name] = count;
    }
  }
  for (const char* stage : {"rx", "decode", "pipeline", "store", "push", "process", "valve", "send", "wire"})
    EXPECT_GT(exit_counts[stage], 0u) << stage << " missing from the exit table:\n" << rp.out;

  auto log = hm::read_histogram_log(log_path.string());
  ASSERT_TRUE(log.ok()) << log.error().message;
  std::map<std::string, std::uint64_t> log_counts;
  std::map<std::string, int> intervals;
  for (const hm::LogInterval& in : log->intervals) {
    log_counts[in.tag] += in.histogram.total_count();
    ++intervals[in.tag];
  }
  for (const auto& [stage, count] : exit_counts) EXPECT_EQ(log_counts[stage], count) << stage;
  EXPECT_GE(intervals["wire"], 2) << "a ~0.25 s replay cut into 100 ms intervals";

  const fs::path classes = compile_java_program(java, dir.path, "HlogCorrectProgram");
  ASSERT_FALSE(classes.empty());

  struct Figures {
    unsigned long long count = 0, p50 = 0, p90 = 0, p99 = 0, max = 0;
  };
  auto java_figures = [&](const std::string& tag, std::uint64_t interval_ns, Figures& raw, Figures& corrected) {
    const CommandResult r = run("java -cp " + java.jar + ":" + classes.string() + " HlogCorrectProgram " +
                                    log_path.string() + " " + tag + " " + std::to_string(interval_ns),
                                err);
    ASSERT_EQ(r.exit_code, 0) << slurp(err);
    ASSERT_EQ(std::sscanf(r.out.c_str(), "raw count=%llu p50=%llu p90=%llu p99=%llu max=%llu corrected count=%llu "
                                         "p50=%llu p90=%llu p99=%llu max=%llu",
                          &raw.count, &raw.p50, &raw.p90, &raw.p99, &raw.max, &corrected.count, &corrected.p50,
                          &corrected.p90, &corrected.p99, &corrected.max),
              10)
        << r.out;
  };
  auto ours = [&](const std::string& tag, const std::string& interval, Figures& f) {
    const CommandResult r = run(bin + " hist " + log_path.string() + " --tag " + tag + " --unit ns" +
                                    (interval.empty() ? "" : " --expected-interval " + interval),
                                err);
    ASSERT_EQ(r.exit_code, 0) << slurp(err);
    const auto at = r.out.find("summary file=");
    ASSERT_NE(at, std::string::npos) << r.out;
    const auto count_at = r.out.find(" count=", at);
    ASSERT_NE(count_at, std::string::npos) << r.out;
    unsigned long long min = 0, p999 = 0, p9999 = 0;
    ASSERT_EQ(std::sscanf(r.out.c_str() + count_at, " count=%llu min=%llu p50=%llu p90=%llu p99=%llu p99.9=%llu "
                                                    "p99.99=%llu max=%llu",
                          &f.count, &min, &f.p50, &f.p90, &f.p99, &p999, &p9999, &f.max),
              8)
        << r.out.substr(at, 300);
  };
  for (const auto& [interval_ns, interval] :
       std::vector<std::pair<std::uint64_t, std::string>>{{500'000, "500us"}, {1'000, "1us"}}) {
    SCOPED_TRACE("expected interval " + interval);
    Figures jraw, jcorr, raw, corr;
    java_figures("wire", interval_ns, jraw, jcorr);
    ours("wire", "", raw);
    ours("wire", interval, corr);
    EXPECT_EQ(raw.count, jraw.count);
    EXPECT_EQ(raw.count, exit_counts["wire"]);
    EXPECT_EQ(raw.p50, jraw.p50);
    EXPECT_EQ(raw.p99, jraw.p99);
    EXPECT_EQ(corr.count, jcorr.count);
    EXPECT_EQ(corr.p50, jcorr.p50);
    EXPECT_EQ(corr.p90, jcorr.p90);
    EXPECT_EQ(corr.p99, jcorr.p99);
    EXPECT_GE(corr.count, raw.count);
    if (interval_ns == 1'000) {
      EXPECT_GT(corr.count, raw.count * 2) << "wire latencies are all far above 1 us";
    }
  }
}
