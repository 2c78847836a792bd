// `hypergate hist` (hist_command.hpp): read, select, merge, correct, then print or plot. Cold path
// throughout; everything is computed before the first line is printed, so an error never leaves half
// a table on stdout.
#include "hist_command.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <limits>
#include <optional>
#include <string_view>

#include "hist_plot.hpp"
#include "hypergate/config/config.hpp"
#include "hypergate/metrics/hdr_histogram.hpp"
#include "hypergate/metrics/histogram_log.hpp"

namespace hypergate::gateway {
namespace {

constexpr int kExitOk = 0;
constexpr int kExitRuntime = 1;
constexpr int kExitUsage = 2;

// Offsets are parsed from text with millisecond resolution; this absorbs the binary rounding of
// "start - StartTime" so an interval starting exactly at --start/--end is kept.
constexpr double kOffsetSlackS = 1e-6;

struct ValueUnit {
  std::string_view name;  // "ns", "us", "ms"
  double ns_per_unit;
  int decimals;  // enough to print an integer nanosecond exactly
};

std::optional<ValueUnit> value_unit(std::string_view name) {
  if (name == "ns") return ValueUnit{"ns", 1.0, 0};
  if (name == "us" || name.empty()) return ValueUnit{"us", 1e3, 3};
  if (name == "ms") return ValueUnit{"ms", 1e6, 6};
  return std::nullopt;
}

// One (file, tag): the merged histogram of the selected intervals.
struct TagSelection {
  std::string file;
  std::string tag;
  std::optional<metrics::HdrHistogram> merged;  // empty: no interval in the window
  std::size_t intervals = 0;
  double first_offset_s = 0.0;
  double last_offset_s = 0.0;
};

std::string tag_label(const std::string& tag) { return tag.empty() ? "(untagged)" : tag; }

// Reads one log and groups its intervals in [start_s, end_s] by tag, tags in order of appearance.
// Tags with no interval in the window are kept (empty), so --tag can tell "absent" from "outside".
Result<std::vector<TagSelection>> select_intervals(const std::string& file, double start_s, double end_s) {
  auto log = metrics::read_histogram_log(file);
  if (!log) {
    Error e = log.error();
    if (e.message.find(file) == std::string::npos) e.message = file + ": " + e.message;
    return e;
  }
  std::vector<TagSelection> groups;
  const double log_start =
      log->start_time_s ? *log->start_time_s : (log->intervals.empty() ? 0.0 : log->intervals.front().start_s);
  for (const metrics::LogInterval& interval : log->intervals) {
    auto group = std::find_if(groups.begin(), groups.end(), [&](const TagSelection& g) { return g.tag == interval.tag; });
    if (group == groups.end()) {
      groups.push_back(TagSelection{file, interval.tag, std::nullopt, 0, 0.0, 0.0});
      group = std::prev(groups.end());
    }
    const double offset = interval.start_s - log_start;
    if (offset + kOffsetSlackS < start_s || offset - kOffsetSlackS > end_s) continue;
    if (!group->merged) {
      group->merged = interval.histogram;
      group->first_offset_s = offset;
    } else if (group->merged->merge(interval.histogram) != Status::Ok) {
      return Error{Status::InvalidArgument,
                   fmt::format("{}: tag {}: an interval at {:.3f} s holds values beyond the range of the first "
                               "one (highest trackable value {})",
                               file, tag_label(interval.tag), offset, group->merged->highest_trackable_value())};
    }
    group->last_offset_s = std::max(group->last_offset_s, offset);
    ++group->intervals;
  }
  return groups;
}

std::string format_value(std::uint64_t ns, const ValueUnit& unit) {
  return fmt::format("{:.{}f}", static_cast<double>(ns) / unit.ns_per_unit, unit.decimals);
}

// The figures of a summary line and of a comparison row.
struct Summary {
  std::uint64_t count = 0;
  std::vector<std::string> values;  // min p50 p90 p99 p99.9 p99.99 max mean
};
constexpr std::string_view kSummaryNames[] = {"min", "p50", "p90", "p99", "p99.9", "p99.99", "max", "mean"};

Summary summarize(const metrics::HdrHistogram& h, const ValueUnit& unit) {
  Summary s;
  s.count = h.total_count();
  s.values.push_back(format_value(h.total_count() == 0 ? 0 : h.lowest_equivalent_value(h.min()), unit));
  for (const double p : {50.0, 90.0, 99.0, 99.9, 99.99}) s.values.push_back(format_value(h.value_at_percentile(p), unit));
  s.values.push_back(format_value(h.total_count() == 0 ? 0 : h.highest_equivalent_value(h.max()), unit));
  s.values.push_back(fmt::format("{:.{}f}", h.mean() / unit.ns_per_unit, unit.decimals));
  return s;
}

std::string csv_field(std::string_view text) {
  if (text.find_first_of(",\"\n") == std::string_view::npos) return std::string(text);
  std::string out = "\"";
  for (const char c : text) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + "\"";
}

void print_csv(const std::vector<TagSelection>& groups, const ValueUnit& unit, int ticks) {
  fmt::print("file,tag,value,percentile,total_count,inverse\n");
  for (const TagSelection& g : groups) {
    for (const metrics::PercentileStep& step : g.merged->percentiles(ticks)) {
      const double fraction = step.percentile / 100.0;
      const std::string inverse = fraction < 1.0 ? fmt::format("{:.2f}", 1.0 / (1.0 - fraction)) : "inf";
      fmt::print("{},{},{},{:.12f},{},{}\n", csv_field(g.file), csv_field(g.tag), format_value(step.value, unit),
                 fraction, step.cumulative_count, inverse);
    }
  }
}

void print_tables(const std::vector<TagSelection>& groups, const ValueUnit& unit, int ticks, bool corrected) {
  for (const TagSelection& g : groups) {
    fmt::print("# {} tag {}: {} interval{} starting {:.3f} s .. {:.3f} s into the log, values in {}{}\n", g.file,
               tag_label(g.tag), g.intervals, g.intervals == 1 ? "" : "s", g.first_offset_s, g.last_offset_s,
               unit.name, corrected ? ", corrected for coordinated omission" : "");
    fmt::print("{}", metrics::format_percentile_distribution(*g.merged, ticks, unit.ns_per_unit));
    const Summary s = summarize(*g.merged, unit);
    std::string line = fmt::format("summary file={} tag={} unit={} count={}", g.file, tag_label(g.tag), unit.name, s.count);
    for (std::size_t i = 0; i < s.values.size(); ++i) line += fmt::format(" {}={}", kSummaryNames[i], s.values[i]);
    fmt::print("{}\n\n", line);
  }
  if (groups.size() < 2) return;

  // The comparison: one row per group, columns as wide as their widest cell.
  std::vector<std::vector<std::string>> rows;
  rows.push_back({"file", "tag", "count"});
  for (const std::string_view name : kSummaryNames) rows.front().emplace_back(name);
  for (const TagSelection& g : groups) {
    const Summary s = summarize(*g.merged, unit);
    std::vector<std::string> row{g.file, tag_label(g.tag), std::to_string(s.count)};
    row.insert(row.end(), s.values.begin(), s.values.end());
    rows.push_back(std::move(row));
  }
  std::vector<std::size_t> widths(rows.front().size(), 0);
  for (const auto& row : rows) {
    for (std::size_t c = 0; c < row.size(); ++c) widths[c] = std::max(widths[c], row[c].size());
  }
  fmt::print("Comparison (values in {}):\n", unit.name);
  for (const auto& row : rows) {
    std::string line;
    for (std::size_t c = 0; c < row.size(); ++c) {
      // file and tag read left to right; figures line up on the right.
      line += c < 2 ? fmt::format("{:<{}}  ", row[c], widths[c]) : fmt::format("{:>{}}  ", row[c], widths[c]);
    }
    while (!line.empty() && line.back() == ' ') line.pop_back();
    fmt::print("{}\n", line);
  }
}

std::optional<double> duration_seconds(const std::string& text, const char* option) {
  const auto ns = config::parse_duration_ns(text);
  if (!ns) {
    fmt::print(stderr,
               "hypergate hist: {}: '{}' is not a duration (\"10s\", \"250ms\", \"2m\" or integer nanoseconds)\n",
               option, text);
    return std::nullopt;
  }
  return static_cast<double>(*ns) / 1e9;
}

}  // namespace

int cmd_hist(const HistArgs& args) {
  // Usage first: nothing is read before the command line is known to be good.
  if (args.files.empty()) {
    fmt::print(stderr, "hypergate hist: no FILE given\nUsage: hypergate hist FILE... [--tag T]... [--start D] "
                       "[--end D] [--csv] [--plot OUT.svg] [--expected-interval D] [--unit ns|us|ms] [--ticks N]\n");
    return kExitUsage;
  }
  const auto unit = value_unit(args.unit);
  if (!unit) {
    fmt::print(stderr, "hypergate hist: --unit: '{}' is not one of ns, us, ms\n", args.unit);
    return kExitUsage;
  }
  if (args.ticks < 1) {
    fmt::print(stderr, "hypergate hist: --ticks: {} is not a positive number\n", args.ticks);
    return kExitUsage;
  }
  double start_s = 0.0;
  double end_s = std::numeric_limits<double>::infinity();
  std::uint64_t expected_interval_ns = 0;
  if (!args.start.empty()) {
    const auto s = duration_seconds(args.start, "--start");
    if (!s) return kExitUsage;
    start_s = *s;
  }
  if (!args.end.empty()) {
    const auto e = duration_seconds(args.end, "--end");
    if (!e) return kExitUsage;
    end_s = *e;
  }
  if (end_s < start_s) {
    fmt::print(stderr, "hypergate hist: --end {} is before --start {}\n", args.end, args.start);
    return kExitUsage;
  }
  if (!args.expected_interval.empty()) {
    const auto ns = config::parse_duration_ns(args.expected_interval);
    if (!ns || *ns == 0) {
      fmt::print(stderr, "hypergate hist: --expected-interval: '{}' is not a positive duration (\"100us\", \"1ms\")\n",
                 args.expected_interval);
      return kExitUsage;
    }
    expected_interval_ns = *ns;
  }

  // Read and select.
  std::vector<TagSelection> all;
  for (const std::string& file : args.files) {
    auto groups = select_intervals(file, start_s, end_s);
    if (!groups) {
      fmt::print(stderr, "hypergate hist: {}\n", groups.error().message);
      return kExitRuntime;
    }
    for (auto& g : *groups) all.push_back(std::move(g));
  }
  for (const std::string& tag : args.tags) {
    if (std::none_of(all.begin(), all.end(), [&](const TagSelection& g) { return g.tag == tag; })) {
      std::string present;
      for (const TagSelection& g : all) {
        const std::string label = tag_label(g.tag);
        if (present.find(label) == std::string::npos) present += (present.empty() ? "" : ", ") + label;
      }
      fmt::print(stderr, "hypergate hist: --tag {} matches no interval; tags present: {}\n", tag,
                 present.empty() ? "none (no intervals)" : present);
      return kExitRuntime;
    }
  }
  std::vector<TagSelection> selected;
  for (auto& g : all) {
    const bool wanted = args.tags.empty() || std::find(args.tags.begin(), args.tags.end(), g.tag) != args.tags.end();
    if (wanted && g.merged) selected.push_back(std::move(g));
  }
  if (selected.empty()) {
    fmt::print(stderr, "hypergate hist: no interval{} starts between {} and {} into the log\n",
               args.tags.empty() ? "" : " of the selected tags", args.start.empty() ? "0s" : args.start,
               args.end.empty() ? "the end" : args.end);
    return kExitRuntime;
  }
  if (expected_interval_ns != 0) {
    for (TagSelection& g : selected) {
      g.merged = metrics::copy_corrected_for_coordinated_omission(*g.merged, expected_interval_ns);
    }
  }

  // Plot before printing, so a plot that cannot be written fails before any output.
  if (!args.plot.empty()) {
    std::vector<PlotSeries> series;
    for (const TagSelection& g : selected) {
      PlotSeries s;
      s.name = args.files.size() > 1 ? g.file + ":" + tag_label(g.tag) : tag_label(g.tag);
      for (const metrics::PercentileStep& step : g.merged->percentiles(args.ticks)) {
        s.points.push_back({step.percentile, static_cast<double>(step.value)});
      }
      s.max_ns = static_cast<double>(g.merged->highest_equivalent_value(g.merged->max()));
      s.total_count = g.merged->total_count();
      series.push_back(std::move(s));
    }
    PlotOptions options;
    options.unit = args.unit == "ns"   ? PlotUnit::Nanoseconds
                   : args.unit == "us" ? PlotUnit::Microseconds
                   : args.unit == "ms" ? PlotUnit::Milliseconds
                                       : PlotUnit::Auto;
    std::string files;
    for (const std::string& f : args.files) files += (files.empty() ? "" : ", ") + f;
    options.title = fmt::format("Latency by percentile: {}{}", files,
                                expected_interval_ns != 0 ? " (corrected for coordinated omission)" : "");
    std::ofstream out(args.plot, std::ios::binary | std::ios::trunc);
    out << render_percentile_svg(series, options);
    out.flush();
    if (!out) {
      fmt::print(stderr, "hypergate hist: --plot {}: cannot write the file\n", args.plot);
      return kExitRuntime;
    }
    fmt::print(stderr, "hypergate hist: wrote {} ({} series)\n", args.plot, series.size());
  }

  if (args.csv) {
    print_csv(selected, *unit, args.ticks);
  } else {
    print_tables(selected, *unit, args.ticks, expected_interval_ns != 0);
  }
  std::fflush(stdout);
  return kExitOk;
}

}  // namespace hypergate::gateway
