// The percentile-spectrum SVG (hist_plot.hpp). Everything is computed in two passes: the axes'
// ranges from all series first (so two runs share one scale and compare at a glance), then the text.
#include "hist_plot.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <iterator>
#include <string_view>

namespace hypergate::gateway {
namespace {

constexpr int kMaxNines = 9;  // 99.9999999%: beyond any count a uint64 histogram holds in practice

// Colour-blind-friendly, distinct on white; the 9th series onwards repeats them dashed.
constexpr std::array<std::string_view, 8> kPalette = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e",
                                                      "#9467bd", "#8c564b", "#e377c2", "#17becf"};

struct UnitScale {
  std::string_view label;  // for the axis title and labels
  double ns_per_unit;
};

UnitScale unit_scale(PlotUnit unit, double largest_ns) {
  if (unit == PlotUnit::Auto) {
    unit = largest_ns < 10'000.0       ? PlotUnit::Nanoseconds
           : largest_ns < 10'000'000.0 ? PlotUnit::Microseconds
                                       : PlotUnit::Milliseconds;
  }
  switch (unit) {
    case PlotUnit::Nanoseconds: return {"ns", 1.0};
    case PlotUnit::Milliseconds: return {"ms", 1e6};
    default: return {"\u00b5s", 1e3};
  }
}

std::string xml_escaped(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (const char c : text) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&apos;"; break;
      default: out += c;
    }
  }
  return out;
}

// "0%", "90%", "99%", "99.9%", ... for k nines.
std::string nines_label(int k) {
  if (k == 0) return "0%";
  if (k == 1) return "90%";
  std::string label = "99";
  if (k > 2) label += "." + std::string(static_cast<std::size_t>(k - 2), '9');
  return label + "%";
}

// The smallest of 1, 2, 5 x 10^n that is >= raw (a readable tick step).
double nice_step(double raw) {
  const double decade = std::pow(10.0, std::floor(std::log10(raw)));
  for (const double m : {1.0, 2.0, 5.0, 10.0}) {
    if (m * decade >= raw * (1 - 1e-9)) return m * decade;
  }
  return 10.0 * decade;
}

// Percentile (0..100) to nines, capped to the axis (100% itself lands on the right edge).
double nines_of(double percentile, double nines_max) {
  const double remaining = 1.0 - percentile / 100.0;
  if (!(remaining > 0.0)) return nines_max;
  return std::clamp(-std::log10(remaining), 0.0, nines_max);
}

struct Frame {
  double left, top, right, bottom;  // the plot area in pixels
  double nines_max;
  bool log_y;
  double y_low, y_high;  // in units; log axis: powers of ten
  [[nodiscard]] double px(double nines) const { return left + (right - left) * nines / nines_max; }
  [[nodiscard]] double py(double value) const {
    double t = 0.0;
    if (log_y) {
      const double v = std::max(value, y_low);
      t = (std::log10(v) - std::log10(y_low)) / (std::log10(y_high) - std::log10(y_low));
    } else {
      t = (value - y_low) / (y_high - y_low);
    }
    return bottom - (bottom - top) * std::clamp(t, 0.0, 1.0);
  }
};

}  // namespace

std::string render_percentile_svg(const std::vector<PlotSeries>& series, const PlotOptions& options) {
  const double height = std::max(options.height, 300);

  // Ranges over every series.
  double largest_ns = 0.0;
  double smallest_positive_ns = 0.0;
  std::uint64_t largest_count = 0;
  for (const PlotSeries& s : series) {
    largest_ns = std::max(largest_ns, s.max_ns);
    largest_count = std::max(largest_count, s.total_count);
    for (const PlotPoint& p : s.points) {
      largest_ns = std::max(largest_ns, p.value_ns);
      if (p.value_ns > 0.0 && (smallest_positive_ns == 0.0 || p.value_ns < smallest_positive_ns)) {
        smallest_positive_ns = p.value_ns;
      }
    }
  }
  const UnitScale unit = unit_scale(options.unit, largest_ns);
  const double largest = largest_ns / unit.ns_per_unit;

  // The legend lives to the right of the plot, as wide as its longest entry (about 7 px per
  // character at 12 px sans-serif); the document grows rather than squeeze the plot below 480 px.
  std::vector<std::string> legend;
  std::size_t longest = 0;
  for (const PlotSeries& s : series) {
    legend.push_back(fmt::format("{} (max {:g} {})", s.name, s.max_ns / unit.ns_per_unit, unit.label));
    longest = std::max(longest, legend.back().size());
  }
  const double legend_width = 60.0 + 7.0 * static_cast<double>(longest);
  const double width = std::max({static_cast<double>(options.width), 400.0, 90.0 + 480.0 + legend_width});

  Frame f{};
  f.left = 90;
  f.top = 60;
  f.right = width - legend_width;
  f.bottom = height - 70;
  f.nines_max = std::clamp(
      largest_count > 1 ? std::ceil(std::log10(static_cast<double>(largest_count)) - 1e-9) : 1.0, 1.0,
      static_cast<double>(kMaxNines));
  f.log_y = smallest_positive_ns > 0.0 && largest_ns / smallest_positive_ns > 1000.0;
  double y_step = 0.0;
  if (f.log_y) {
    f.y_low = std::pow(10.0, std::floor(std::log10(smallest_positive_ns / unit.ns_per_unit)));
    f.y_high = std::pow(10.0, std::ceil(std::log10(largest)));
    if (f.y_high <= f.y_low) f.y_high = f.y_low * 10.0;
  } else {
    f.y_low = 0.0;
    y_step = nice_step(largest > 0.0 ? largest / 5.0 : 0.2);
    f.y_high = std::max(y_step, std::ceil(largest / y_step - 1e-9) * y_step);
  }

  std::string out;
  auto it = std::back_inserter(out);
  fmt::format_to(it, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
  fmt::format_to(it,
                 "<svg xmlns=\"http://www.w3.org/2000/svg\" version=\"1.1\" width=\"{0}\" height=\"{1}\" "
                 "viewBox=\"0 0 {0} {1}\" font-family=\"sans-serif\" font-size=\"12\">\n",
                 width, height);
  fmt::format_to(it, "<title>{}</title>\n", xml_escaped(options.title));
  fmt::format_to(it, "<rect x=\"0\" y=\"0\" width=\"{}\" height=\"{}\" fill=\"white\"/>\n", width, height);
  fmt::format_to(it, "<text class=\"title\" x=\"{:.1f}\" y=\"30\" text-anchor=\"middle\" font-size=\"16\">{}</text>\n",
                 (f.left + f.right) / 2, xml_escaped(options.title));

  // Grid, ticks and tick labels.
  fmt::format_to(it, "<g class=\"x-axis\" stroke=\"#dddddd\">\n");
  for (int k = 0; k <= static_cast<int>(f.nines_max); ++k) {
    const double x = f.px(k);
    fmt::format_to(it, "<line x1=\"{0:.1f}\" y1=\"{1:.1f}\" x2=\"{0:.1f}\" y2=\"{2:.1f}\"/>\n", x, f.top, f.bottom);
    fmt::format_to(it, "<text x=\"{:.1f}\" y=\"{:.1f}\" text-anchor=\"middle\" stroke=\"none\" fill=\"black\">{}</text>\n",
                   x, f.bottom + 18, nines_label(k));
  }
  fmt::format_to(it, "</g>\n<g class=\"y-axis\" stroke=\"#dddddd\">\n");
  std::vector<double> y_ticks;
  if (f.log_y) {
    for (double v = f.y_low; v <= f.y_high * (1 + 1e-9); v *= 10.0) y_ticks.push_back(v);
  } else {
    for (int i = 0; i * y_step <= f.y_high * (1 + 1e-9); ++i) y_ticks.push_back(i * y_step);
  }
  for (const double v : y_ticks) {
    const double y = f.py(v);
    fmt::format_to(it, "<line x1=\"{0:.1f}\" y1=\"{1:.1f}\" x2=\"{2:.1f}\" y2=\"{1:.1f}\"/>\n", f.left, y, f.right);
    fmt::format_to(it, "<text x=\"{:.1f}\" y=\"{:.1f}\" text-anchor=\"end\" stroke=\"none\" fill=\"black\">{:g}</text>\n",
                   f.left - 6, y + 4, v);
  }
  fmt::format_to(it, "</g>\n");
  fmt::format_to(it, "<rect x=\"{:.1f}\" y=\"{:.1f}\" width=\"{:.1f}\" height=\"{:.1f}\" fill=\"none\" stroke=\"black\"/>\n",
                 f.left, f.top, f.right - f.left, f.bottom - f.top);
  fmt::format_to(it, "<text class=\"axis-title\" x=\"{:.1f}\" y=\"{:.1f}\" text-anchor=\"middle\">Percentile</text>\n",
                 (f.left + f.right) / 2, f.bottom + 45);
  fmt::format_to(it,
                 "<text class=\"axis-title\" x=\"20\" y=\"{0:.1f}\" text-anchor=\"middle\" "
                 "transform=\"rotate(-90 20 {0:.1f})\">Latency ({1}){2}</text>\n",
                 (f.top + f.bottom) / 2, unit.label, f.log_y ? ", log scale" : "");

  // Series, their max markers and the legend.
  for (std::size_t i = 0; i < series.size(); ++i) {
    const PlotSeries& s = series[i];
    const std::string_view colour = kPalette[i % kPalette.size()];
    const char* dash = i >= kPalette.size() ? " stroke-dasharray=\"6 3\"" : "";
    std::string d;
    for (const PlotPoint& p : s.points) {
      fmt::format_to(std::back_inserter(d), "{}{:.1f} {:.1f}", d.empty() ? "M" : " L",
                     f.px(nines_of(p.percentile, f.nines_max)), f.py(p.value_ns / unit.ns_per_unit));
    }
    fmt::format_to(it,
                   "<path class=\"series\" data-name=\"{}\" d=\"{}\" fill=\"none\" stroke=\"{}\" "
                   "stroke-width=\"2\"{}/>\n",
                   xml_escaped(s.name), d, colour, dash);
    const double max_units = s.max_ns / unit.ns_per_unit;
    const double mx = f.px(f.nines_max);
    const double my = f.py(max_units);
    fmt::format_to(it, "<circle class=\"max\" cx=\"{:.1f}\" cy=\"{:.1f}\" r=\"4\" fill=\"{}\"/>\n", mx, my, colour);
    fmt::format_to(it, "<text class=\"max-label\" x=\"{:.1f}\" y=\"{:.1f}\" text-anchor=\"end\" fill=\"{}\">max {:g} {}</text>\n",
                   mx - 8, my - 6 + 14.0 * static_cast<double>(i % 3), colour, max_units, unit.label);

    const double ly = f.top + 10 + 22.0 * static_cast<double>(i);
    fmt::format_to(it,
                   "<g class=\"legend\"><line x1=\"{0:.1f}\" y1=\"{1:.1f}\" x2=\"{2:.1f}\" y2=\"{1:.1f}\" "
                   "stroke=\"{3}\" stroke-width=\"3\"{4}/><text x=\"{5:.1f}\" y=\"{6:.1f}\">{7}</text></g>\n",
                   f.right + 16, ly, f.right + 40, colour, dash, f.right + 46, ly + 4, xml_escaped(legend[i]));
  }
  fmt::format_to(it, "</svg>\n");
  return out;
}

}  // namespace hypergate::gateway
