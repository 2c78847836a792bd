// The percentile-spectrum SVG of `hypergate hist --plot`: one <path class="series"> per series, axis
// titles, the nines axis as far as the counts resolve, linear vs log latency axis, escaping, and a
// document that an XML parser accepts (python3's minidom, as the integration test uses).
#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include "hist_plot.hpp"

namespace hypergate::gateway {
namespace {

std::size_t occurrences(const std::string& text, const std::string& what) {
  std::size_t n = 0;
  for (std::size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + what.size())) ++n;
  return n;
}

// A spectrum rising from `low` ns at 0% to `high` ns at 100%, over the nines a count of `count` resolves.
PlotSeries spectrum(const std::string& name, double low, double high, std::uint64_t count) {
  PlotSeries s;
  s.name = name;
  s.total_count = count;
  s.max_ns = high;
  for (const double p : {0.0, 50.0, 90.0, 99.0, 99.9, 99.99, 100.0}) {
    s.points.push_back({p, low + (high - low) * p / 100.0 * p / 100.0});
  }
  return s;
}

bool well_formed_xml(const std::string& svg) {
  char path[] = "/tmp/hg_hist_plot_XXXXXX";
  const int fd = mkstemp(path);
  if (fd < 0) return false;
  std::ofstream(path) << svg;
  const std::string cmd =
      std::string("python3 -c 'import xml.dom.minidom,sys; xml.dom.minidom.parse(sys.argv[1])' ") + path;
  const int rc = std::system(cmd.c_str());
  std::remove(path);
  return rc == 0;
}

TEST(HistPlot, OnePathPerSeriesWithAxisTitlesTitleLegendAndMaxMarkers) {
  const std::vector<PlotSeries> series{spectrum("decode", 800, 9'000, 10'000),
                                       spectrum("pipeline", 1'500, 12'000, 10'000),
                                       spectrum("tx", 2'000, 20'000, 10'000)};
  PlotOptions options;
  options.title = "stages";
  const std::string svg = render_percentile_svg(series, options);
  EXPECT_EQ(svg.rfind("<?xml version=\"1.0\" encoding=\"UTF-8\"?>", 0), 0u);
  EXPECT_EQ(occurrences(svg, "<path class=\"series\""), 3u);
  EXPECT_EQ(occurrences(svg, "<circle class=\"max\""), 3u);
  EXPECT_EQ(occurrences(svg, "<g class=\"legend\">"), 3u);
  EXPECT_NE(svg.find(">Percentile</text>"), std::string::npos);
  EXPECT_NE(svg.find(">Latency (\u00b5s)</text>"), std::string::npos) << "auto unit for a 20 us max";
  EXPECT_NE(svg.find("<title>stages</title>"), std::string::npos);
  // Distinct colours.
  EXPECT_NE(svg.find("stroke=\"#1f77b4\""), std::string::npos);
  EXPECT_NE(svg.find("stroke=\"#d62728\""), std::string::npos);
  EXPECT_NE(svg.find("stroke=\"#2ca02c\""), std::string::npos);
  // 10,000 samples resolve four nines: ticks up to 99.99%, not beyond.
  for (const char* tick : {">0%<", ">90%<", ">99%<", ">99.9%<", ">99.99%<"}) {
    EXPECT_NE(svg.find(tick), std::string::npos) << tick;
  }
  EXPECT_EQ(svg.find(">99.999%<"), std::string::npos);
  EXPECT_NE(svg.find("max 20 \u00b5s"), std::string::npos);
  EXPECT_TRUE(well_formed_xml(svg));
}

TEST(HistPlot, LinearFromZeroUnlessTheValuesSpanMoreThanThreeDecades) {
  const std::string linear = render_percentile_svg({spectrum("a", 1'000, 900'000, 1'000)}, PlotOptions{});
  EXPECT_EQ(linear.find("log scale"), std::string::npos);
  EXPECT_NE(linear.find(">0</text>"), std::string::npos) << "a linear axis starts at 0";

  const std::string log = render_percentile_svg({spectrum("a", 1'000, 2'000'000, 1'000)}, PlotOptions{});
  EXPECT_NE(log.find("Latency (\u00b5s), log scale"), std::string::npos);
  EXPECT_NE(log.find(">1</text>"), std::string::npos) << "decade ticks from 1 us";
  EXPECT_NE(log.find(">10000</text>"), std::string::npos) << "decade ticks up to 10 ms";
  EXPECT_TRUE(well_formed_xml(log));
}

TEST(HistPlot, ExplicitUnitEscapedNamesManySeriesAndNoSeries) {
  std::vector<PlotSeries> many;
  for (int i = 0; i < 10; ++i) many.push_back(spectrum("run<" + std::to_string(i) + ">&\"x\"", 100, 5'000, 100));
  PlotOptions options;
  options.unit = PlotUnit::Nanoseconds;
  options.title = "a & b";
  const std::string svg = render_percentile_svg(many, options);
  EXPECT_EQ(occurrences(svg, "<path class=\"series\""), 10u);
  EXPECT_NE(svg.find("Latency (ns)"), std::string::npos);
  EXPECT_NE(svg.find("run&lt;3&gt;&amp;&quot;x&quot;"), std::string::npos);
  EXPECT_EQ(occurrences(svg, "stroke-dasharray"), 4u) << "series 9 and 10 repeat the palette dashed (path + legend)";
  EXPECT_TRUE(well_formed_xml(svg));

  const std::string empty = render_percentile_svg({}, PlotOptions{});
  EXPECT_EQ(occurrences(empty, "<path class=\"series\""), 0u);
  EXPECT_NE(empty.find(">Percentile</text>"), std::string::npos);
  EXPECT_TRUE(well_formed_xml(empty));
}

}  // namespace
}  // namespace hypergate::gateway
