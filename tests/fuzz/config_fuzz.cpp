// Fuzzes the configuration parser: arbitrary bytes -> Document::parse (+ --set overrides) -> the
// reads a deployment plan makes (every typed read, nested tables, instances, finish) -> the
// formatted diagnostics. Whatever the input, this must never crash, hang or trip a sanitizer.
//
// Input layout: the TOML text, optionally followed by a line "#--set" and then one override per
// line ("a.b=value"), so the fuzzer explores the override path too. Malformed overrides are errors.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "hypergate/config/config.hpp"

namespace {

using hypergate::config::Document;
using hypergate::config::Section;

void read_instance(Section s) {
  (void)s.required_string("type");
  (void)s.string("pipeline", "passthrough");
  (void)s.integer("rate", 0, 0, 1'000'000'000);
  (void)s.integer("count", 0, 0, INT64_MAX);
  (void)s.number("ratio", 0.5, 0.0, 1.0);
  (void)s.boolean("enabled", true);
  (void)s.duration_ns("timeout", 1'000'000);
  (void)s.endpoint("listen", "0.0.0.0:0");
  (void)s.string_list("subjects");
  (void)s.choice("mode", "a", {"a", "b"});
  Section opts = s.table("pipeline_options");
  (void)opts.integer("depth", 1, 1, 64);
  (void)opts.name();
  opts.finish();
  if (!s.has("type")) s.error("type", "fuzz: no type");
  s.finish();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  std::string_view text = input;
  std::vector<std::string> overrides;
  constexpr std::string_view kMarker = "\n#--set\n";
  if (const auto at = input.find(kMarker); at != std::string_view::npos) {
    text = input.substr(0, at);
    std::string_view rest = input.substr(at + kMarker.size());
    while (!rest.empty() && overrides.size() < 16) {
      const auto nl = rest.find('\n');
      overrides.emplace_back(rest.substr(0, nl));
      rest = nl == std::string_view::npos ? std::string_view{} : rest.substr(nl + 1);
    }
  }

  // The helpers that parse values on their own.
  const std::string_view first_line = text.substr(0, text.find('\n'));
  (void)hypergate::config::parse_endpoint(first_line);
  (void)hypergate::config::parse_duration_ns(first_line);

  auto doc = Document::parse(text, "fuzz.toml", overrides);
  if (!doc) {
    (void)doc.error().message.size();
    return 0;
  }
  Document& d = **doc;
  Section g = d.section("gateway");
  (void)g.integer("workers", 1, 1, 64);
  (void)g.integer_list("cores", 0, 4095);
  (void)g.choice("idle", "backoff", {"busy", "backoff"});
  g.finish();
  Section admin = d.section("admin");
  if (auto ep = admin.endpoint("listen", "127.0.0.1:9901")) (void)ep->to_string();
  (void)admin.boolean("enabled", true);
  admin.finish();
  Section valves = d.section("valves");
  (void)valves.duration_ns("spin_ns", 10'000);
  (void)valves.integer("lanes", 32, 1, 1024);
  valves.finish();
  for (Section s : d.instances("source")) read_instance(s);
  for (Section s : d.instances("sink")) read_instance(s);
  d.finish();
  d.finish();  // idempotent
  (void)d.diagnostics().format();
  return 0;
}
