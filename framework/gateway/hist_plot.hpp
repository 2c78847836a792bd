#pragma once
// The percentile-spectrum plot of `hypergate hist --plot`: a standalone SVG 1.1 document, written by
// hand (no plotting dependency), that puts several latency distributions side by side.
//
// WHAT IT DRAWS
// - x: percentile on a log "nines" axis, x = log10(1 / (1 - p)), ticks at 0%, 90%, 99%, 99.9%, ...
//   up to the nines the data can resolve: ceil(log10(largest total count)), at least 90%, at most
//   99.9999999%. A point beyond that (and the 100% point) is drawn at the right edge.
// - y: latency in the chosen unit. Linear from 0, unless the plotted values span more than three
//   decades (largest / smallest positive value > 1000): then log10 with a tick per decade, because a
//   linear axis would flatten everything below the tail into the floor.
// - one <path class="series"> per series (exactly one: tests count them), distinct colours from a
//   fixed palette, the max of each series marked with a <circle class="max"> and its value, a legend,
//   a title and the axis titles "Percentile" and "Latency (<unit>)".
//
// render_percentile_svg() is a pure function of its arguments (deterministic text, no I/O).
#include <cstdint>
#include <string>
#include <vector>

namespace hypergate::gateway {

/// One point of a percentile spectrum.
struct PlotPoint {
  double percentile = 0.0;  ///< 0..100
  double value_ns = 0.0;    ///< latency at that percentile, nanoseconds
};

/// One distribution: a tag, or file:tag when several files are compared.
struct PlotSeries {
  std::string name;
  std::vector<PlotPoint> points;  ///< ascending percentile (HdrHistogram::percentiles() order)
  double max_ns = 0.0;            ///< the distribution's max (marked on the plot)
  std::uint64_t total_count = 0;  ///< decides how many nines the x-axis shows
};

enum class PlotUnit { Auto, Nanoseconds, Microseconds, Milliseconds };

struct PlotOptions {
  std::string title = "Latency by percentile";
  PlotUnit unit = PlotUnit::Auto;  ///< Auto: ns below 10 us, us below 10 ms, else ms (by the largest max)
  int width = 960;                 ///< pixels, whole document (wider when long legend entries need it)
  int height = 540;
};

/// The SVG document (UTF-8, starts with the XML declaration). Series without points are listed in
/// the legend but draw an empty path. An empty `series` still gives a valid document with axes.
[[nodiscard]] std::string render_percentile_svg(const std::vector<PlotSeries>& series, const PlotOptions& options);

}  // namespace hypergate::gateway
