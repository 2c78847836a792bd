#pragma once
// `hypergate hist`: reads HdrHistogram interval logs (what `run|replay --hlog` writes, one tag per
// pipeline stage, values in nanoseconds) and prints what a latency investigation needs.
//
//   hist FILE... [--tag T]... [--start D] [--end D] [--csv] [--plot OUT.svg] [--expected-interval D]
//                [--unit ns|us|ms] [--ticks N]
//
// 1. Each file is read with metrics::read_histogram_log(). Its intervals are grouped by tag (untagged
//    intervals form the tag ""); an interval is kept when its start offset from the log's start
//    (#[StartTime], else the first interval's start) lies in [--start, --end]; the kept intervals of
//    one (file, tag) are merged. --tag (repeatable) keeps only those tags.
// 2. Per (file, tag): the .hgrm percentile table (metrics::format_percentile_distribution, --ticks
//    steps per halving of the distance to 100%, values in --unit, default us) and one summary line
//      summary file=F tag=T unit=us count=N min=.. p50=.. p90=.. p99=.. p99.9=.. p99.99=.. max=.. mean=..
//    where pNN is HdrHistogram's value_at_percentile, min/max the lowest/highest equivalent value of
//    the extreme buckets (HdrHistogram's getMinValue/getMaxValue). With several (file, tag) groups a
//    comparison table follows, one row per group. --csv prints instead one CSV document:
//      file,tag,value,percentile,total_count,inverse      (percentile a fraction; inverse "inf" at 1)
// 3. --expected-interval D: coordinated-omission correction of each merged histogram
//    (metrics::copy_corrected_for_coordinated_omission) before anything is printed or plotted.
// 4. --plot OUT.svg: the percentile spectra of all groups in one SVG (hist_plot.hpp); series are
//    named by tag, or file:tag when several files are given.
//
// Exit codes: 0 ok; 1 a file that cannot be read or parsed (the message names the file and line), a
// --tag that matches nothing (the message lists the tags present), no interval in the window, a plot
// that cannot be written; 2 usage (bad duration, unit or ticks; --end before --start; no FILE).
#include <string>
#include <vector>

namespace hypergate::gateway {

struct HistArgs {
  std::vector<std::string> files;
  std::vector<std::string> tags;     ///< empty: every tag
  std::string start;                 ///< DURATION offset from the log's start ("" = from the start)
  std::string end;                   ///< DURATION offset ("" = to the end)
  std::string expected_interval;     ///< DURATION ("" = no correction)
  std::string plot;                  ///< SVG output path ("" = no plot)
  std::string unit;                  ///< ns | us | ms; "" = us for the tables, automatic for the plot
  int ticks = 5;                     ///< percentile steps per halving of the distance to 100%
  bool csv = false;
};

[[nodiscard]] int cmd_hist(const HistArgs& args);

}  // namespace hypergate::gateway
