// `hypergate replay` and `hypergate gen itch` (see market_commands.hpp).
#include "market_commands.hpp"

#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <csignal>
#include <cstdio>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>

#include "hypergate/adapter/plugin.hpp"
#include "hypergate/config/config.hpp"
#include "hypergate/runtime/runtime.hpp"
#include "market/itch_pipeline.hpp"
#include "market/tob_update.hpp"
#include "pcap/capture_reader.hpp"
#include "pcap/capture_writer.hpp"
#include "pcap/replay_schedule.hpp"
#include "pcap/udp_replay.hpp"
#include "plan.hpp"
#include "protocols/itch_generator.hpp"
#include "run.hpp"

namespace hypergate::gateway {

namespace {

constexpr int kExitOk = 0;
constexpr int kExitRuntime = 1;
constexpr int kExitUsage = 2;

// Capture timestamps of generated feeds: the ITCH time of day on a fixed date (2024-01-02 UTC), so the
// same options always give the same file.
constexpr std::uint64_t kGenDateNs = 1'704'153'600ull * 1'000'000'000ull;

// The replay's own source, appended to the configuration. Strings are TOML basic strings.
std::string toml_string(std::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + "\"";
}

// Without --config: one worker, no admin listener, everything the pipeline emits is counted and dropped.
constexpr std::string_view kDefaultReplayConfig = R"([gateway]
workers = 1

[admin]
enabled = false

[sink.discard]
type = "null"
)";

std::string replay_source_section(const ReplayArgs& a, bool progress) {
  return fmt::format(
      "\n# added by `hypergate replay`\n[source.replay]\ntype = \"pcap\"\npath = {}\nport = {}\nspeed = {}\n"
      "loop = {}\nprogress = {}\npipeline = \"itch\"\n",
      toml_string(a.capture), a.port, toml_string(a.speed), a.loop, progress ? "true" : "false");
}

// `--via dpdk`: the capture becomes a net_pcap vdev's rx file; the dpdk source ends once the file is
// exhausted (no frame for finish_after_idle).
constexpr std::string_view kDpdkReplayPort = "net_pcap_hgreplay";

std::string replay_dpdk_section(const ReplayArgs& a) {
  return fmt::format(
      "\n# added by `hypergate replay --via dpdk`\n[source.replay]\ntype = \"dpdk\"\nport = {}\n"
      "listen = \"0.0.0.0:{}\"\nfinish_after_idle = \"300ms\"\npipeline = \"itch\"\n",
      toml_string(kDpdkReplayPort), a.port);
}

std::string json_escape(std::string_view s) {
  std::string out;
  for (char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (u < 0x20 || u >= 0x7F) {
      out += fmt::format("\\u{:04x}", u);
    } else {
      out += c;
    }
  }
  return out;
}

// The final top of book, read back from the pipeline's Hyperion store (a reader, as any thread would).
int write_book_json(const market::ItchPipeline& p, const std::string& path) {
  const kv::Hyperion* store = p.store();
  auto reader = store->reader();
  if (!reader) {
    fmt::print(stderr, "hypergate replay: --book-json: {}\n", reader.error().message);
    return kExitRuntime;
  }
  // Symbols in name order, each once (a locate renamed by a later directory message keeps its last name).
  std::vector<std::string> names;
  for (const std::uint16_t locate : p.locates()) {
    std::string_view s = p.book().symbol(locate);
    while (!s.empty() && s.back() == ' ') s.remove_suffix(1);
    if (!s.empty()) names.emplace_back(s);
  }
  std::sort(names.begin(), names.end());
  names.erase(std::unique(names.begin(), names.end()), names.end());

  std::string out = "{\"symbols\": {";
  bool first = true;
  std::array<std::byte, market::kTobUpdateSize> rec{};
  for (const auto& name : names) {
    std::size_t len = 0;
    const Status st = reader->get(name, rec, len);
    if (st != Status::Ok) continue;  // erased by a session change: not part of the final state
    market::TobUpdate u;
    if (market::decode_tob_update(std::span<const std::byte>(rec.data(), len), u) != Status::Ok) {
      fmt::print(stderr, "hypergate replay: store value of '{}' is not a top-of-book record\n", name);
      return kExitRuntime;
    }
    out += fmt::format("{}\n  \"{}\": {{\"bid_price\": {}, \"bid_qty\": {}, \"ask_price\": {}, \"ask_qty\": {}{}}}",
                       first ? "" : ",", json_escape(name), u.bid_price, u.bid_qty, u.ask_price, u.ask_qty,
                       u.stale() ? ", \"stale\": true" : "");
    first = false;
  }
  const market::ItchStats s = p.stats();
  out += fmt::format("\n}},\n\"messages\": {},\n\"gaps\": [", s.messages);
  for (std::size_t i = 0; i < s.gap_ranges.size(); ++i)
    out += fmt::format("{}[{}, {}]", i == 0 ? "" : ", ", s.gap_ranges[i].first, s.gap_ranges[i].last);
  out += "]}\n";
  if (path == "-") {  // stdout
    fmt::print("{}", out);
    std::fflush(stdout);
    return kExitOk;
  }
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f << out;
  f.close();
  if (!f) {
    fmt::print(stderr, "hypergate replay: cannot write {}\n", path);
    return kExitRuntime;
  }
  fmt::print("book: {} symbols written to {}\n", names.size(), path);
  return kExitOk;
}

void print_replay_summary(const market::ItchPipeline& p, const runtime::Runtime& rt) {
  const market::ItchStats s = p.stats();
  const runtime::Report rep = rt.report();
  const double secs = static_cast<double>(rep.elapsed_ns) / 1e9;
  fmt::print("\nreplay: {} datagrams, {} ITCH messages in {:.3f} s = {:.0f} msgs/s, {} top-of-book updates\n",
             s.datagrams, s.messages, secs, secs > 0 ? static_cast<double>(s.messages) / secs : 0.0, s.updates);
  fmt::print("messages by type:\n");
  for (std::size_t t = 0; t < 256; ++t) {
    if (s.by_type[t] == 0) continue;
    const char c = static_cast<char>(t);
    fmt::print("  {} {:<26} {:>12}\n", c, protocols::itch::type_name(c), s.by_type[t]);
  }
  if (s.rejects.empty()) {
    fmt::print("rejects: none\n");
  } else {
    fmt::print("rejects by reason:\n");
    for (const auto& [reason, n] : s.rejects) fmt::print("  {:<28} {:>12}\n", reason, n);
  }
  fmt::print("gaps: {} ({} messages missing, {} recovered, {} lost)\n", s.gaps, s.missing, s.recovered, s.lost);
  for (std::size_t i = 0; i < s.gap_ranges.size() && i < 20; ++i)
    fmt::print("  [{}, {}]\n", s.gap_ranges[i].first, s.gap_ranges[i].last);
  if (s.gap_ranges.size() > 20) fmt::print("  ... {} more\n", s.gap_ranges.size() - 20);
  if (s.store_errors != 0) fmt::print("store errors: {}\n", s.store_errors);
  // The per-stage latency table is part of the runtime report printed just before this summary.
}

int replay_send(const ReplayArgs& a) {
  auto ep = config::parse_endpoint(a.send);
  if (!ep || ep->port == 0) {
    fmt::print(stderr, "hypergate replay: --send '{}': expected HOST:PORT\n", a.send);
    return kExitUsage;
  }
  auto speed = pcap::parse_speed(a.speed);
  if (!speed) {
    fmt::print(stderr, "hypergate replay: --speed: {}\n", speed.error().message);
    return kExitUsage;
  }
  auto reader = pcap::CaptureReader::open(a.capture, a.port);
  if (!reader) {
    fmt::print(stderr, "hypergate replay: {}\n", reader.error().message);
    return kExitRuntime;
  }
  pcap::UdpDestination dest;
  dest.host = ep->host;
  dest.port = ep->port;
  dest.interface = a.interface;
  pcap::ReplaySchedule schedule(speed.value(), pcap::monotonic_now_ns());
  static std::atomic<bool> stop{false};
  std::signal(SIGINT, [](int) { stop.store(true, std::memory_order_relaxed); });  // relaxed: a lone flag
  std::signal(SIGTERM, [](int) { stop.store(true, std::memory_order_relaxed); });
  pcap::ReplayOptions ro;
  ro.loops = a.loop;
  ro.stop = &stop;
  ro.progress = !a.quiet;
  auto r = pcap::replay_to_udp(reader.value(), dest, schedule, ro);
  if (!r) {
    fmt::print(stderr, "hypergate replay: {}\n", r.error().message);
    return kExitRuntime;
  }
  fmt::print("sent {} datagrams ({} bytes) to {} in {:.3f} s: {:.0f} pkt/s, {:.1f} MB/s, {} send errors{}\n",
             r->packets, r->bytes, a.send, static_cast<double>(r->elapsed_ns) / 1e9, r->packets_per_second,
             r->bytes_per_second / 1e6, r->send_errors, r->stopped ? " (stopped)" : "");
  if (!r->read_error.empty()) {
    fmt::print(stderr, "hypergate replay: {}\n", r->read_error);
    return kExitRuntime;
  }
  return r->send_errors == 0 ? kExitOk : kExitRuntime;
}

}  // namespace

int cmd_replay(const ReplayArgs& a) {
  const bool via_dpdk = a.via == "dpdk";
  if (a.via != "inprocess" && !via_dpdk) {
    fmt::print(stderr, "hypergate replay: --via '{}': expected inprocess or dpdk\n", a.via);
    return kExitUsage;
  }
  // A missing or unreadable capture is reported before anything else starts.
  {
    auto probe = pcap::CaptureReader::open(a.capture, a.port);
    if (!probe) {
      fmt::print(stderr, "hypergate replay: {}\n", probe.error().message);
      return kExitRuntime;
    }
  }
  if (via_dpdk) {
    // The capture is read by DPDK's net_pcap PMD, as fast as the source polls, once.
    if (!a.send.empty() || a.speed != "max" || a.loop != 1) {
      fmt::print(stderr, "hypergate replay: --via dpdk replays once at full speed (no --send, --speed or --loop)\n");
      return kExitUsage;
    }
    if (a.capture.find_first_of(",=") != std::string::npos) {
      fmt::print(stderr, "hypergate replay: --via dpdk: the capture path may not contain ',' or '=' (vdev arguments)\n");
      return kExitUsage;
    }
  }
  if (!a.send.empty()) return replay_send(a);

  for (const auto& lib : a.plugins) {
    auto info = adapter::load_plugin(lib);
    if (!info) {
      fmt::print(stderr, "hypergate replay: --plugin {}: {}\n", lib, info.error().message);
      return kExitUsage;
    }
  }
  std::string text;
  std::string name = "<replay>";
  if (!a.config.empty()) {
    std::ifstream f(a.config, std::ios::binary);
    if (!f) {
      fmt::print(stderr, "hypergate replay: cannot read {}\n", a.config);
      return kExitUsage;
    }
    std::stringstream ss;
    ss << f.rdbuf();
    text = ss.str();
    name = a.config;
  } else {
    text = std::string(kDefaultReplayConfig);
  }
  std::vector<std::string> sets = a.sets;
  if (via_dpdk) {
    const std::string vdev = toml_string(std::string(kDpdkReplayPort) + ",rx_pcap=" + a.capture);
    if (text.find("\n[dpdk]") == std::string::npos && text.rfind("[dpdk]", 0) != 0) {
      // Nothing configured: plain memory, no PCI scan, only the capture's vdev.
      text += fmt::format("\n# added by `hypergate replay --via dpdk`\n[dpdk]\nno_huge = true\nno_pci = true\n"
                          "vdevs = [{}]\n", vdev);
    } else {
      sets.push_back("dpdk.vdevs=[" + vdev + "]");
    }
    text += replay_dpdk_section(a);
  } else {
    text += replay_source_section(a, !a.quiet && ::isatty(STDERR_FILENO) != 0);
  }
  auto doc = config::Document::parse(text, name, sets);
  if (!doc) {
    fmt::print(stderr, "{}\nhypergate replay: cannot load configuration\n", doc.error().message);
    return kExitUsage;
  }
  auto plan = build_plan(*doc.value());
  if (!plan) {
    fmt::print(stderr, "{}hypergate replay: configuration errors (the replay adds [source.replay] at the end)\n",
               plan.error().message);
    return kExitUsage;
  }
  RunOptions ro;
  ro.command = "replay";
  ro.quiet = true;
  ro.histograms = a.histograms;
  ro.after_run = [&a](const runtime::Runtime& rt) -> int {
    const runtime::Report rep = rt.report();
    for (std::size_t i = 0; i < rep.sources.size(); ++i) {
      if (rep.sources[i].name != "replay") continue;
      const auto* p = dynamic_cast<const market::ItchPipeline*>(rt.pipeline(static_cast<std::uint16_t>(i)));
      if (p == nullptr) {
        fmt::print(stderr, "hypergate replay: source.replay does not run the itch pipeline\n");
        return kExitUsage;
      }
      print_replay_summary(*p, rt);
      if (rep.sources[i].state == runtime::AdapterState::Failed) return kExitRuntime;
      return a.book_json.empty() ? kExitOk : write_book_json(*p, a.book_json);
    }
    return kExitRuntime;
  };
  return run_gateway(plan.value(), ro);
}

int cmd_gen_itch(const GenItchArgs& a) {
  protocols::itch::GeneratorOptions o;
  o.symbols = a.symbols;
  o.symbol_count = a.symbol_count;
  o.message_count = a.messages;
  o.session = a.session;
  o.seed = a.seed;
  o.max_packet_bytes = a.max_packet_bytes;
  o.messages_per_second = a.rate;
  o.loss_probability = a.loss;
  for (const auto& d : a.drops) {
    const auto dash = d.find('-');
    try {
      std::size_t used = 0;
      protocols::mold::Gap g;
      g.first = std::stoull(d.substr(0, dash), &used);
      g.last = dash == std::string::npos ? g.first : std::stoull(d.substr(dash + 1));
      if (g.last < g.first || g.first == 0) throw std::invalid_argument("range");
      o.drop_ranges.push_back(g);
    } catch (const std::exception&) {
      fmt::print(stderr, "hypergate gen itch: --drop '{}': expected FIRST-LAST sequence numbers (from 1)\n", d);
      return kExitUsage;
    }
  }
  auto src = config::parse_endpoint(a.src);
  auto dst = config::parse_endpoint(a.dst);
  pcap::FrameAddresses addr;
  auto src_ip = src ? pcap::parse_ipv4(src->host) : Result<std::uint32_t>(Error{Status::InvalidArgument, "bad"});
  auto dst_ip = dst ? pcap::parse_ipv4(dst->host) : Result<std::uint32_t>(Error{Status::InvalidArgument, "bad"});
  if (!src_ip || !dst_ip || src->port == 0 || dst->port == 0) {
    fmt::print(stderr, "hypergate gen itch: --src/--dst: expected IPv4:PORT (got '{}', '{}')\n", a.src, a.dst);
    return kExitUsage;
  }
  addr.src_ip = src_ip.value();
  addr.dst_ip = dst_ip.value();
  addr.src_port = src->port;
  addr.dst_port = dst->port;
  if ((addr.dst_ip >> 28) == 0xE) addr.dst_mac = pcap::multicast_mac(addr.dst_ip);

  auto gen = protocols::itch::ItchGenerator::create(o);
  if (!gen) {
    fmt::print(stderr, "hypergate gen itch: {}\n", gen.error().message);
    return kExitUsage;
  }
  auto writer = pcap::CaptureWriter::create(a.out, addr);
  if (!writer) {
    fmt::print(stderr, "hypergate gen itch: {}\n", writer.error().message);
    return kExitRuntime;
  }
  std::uint64_t written = 0, dropped = 0;
  protocols::itch::GeneratedPacket pkt;
  while (gen->next(pkt)) {
    if (pkt.dropped) {
      ++dropped;
      continue;
    }
    if (auto r = writer->write(pkt.bytes, kGenDateNs + pkt.timestamp_ns); !r) {
      fmt::print(stderr, "hypergate gen itch: {}\n", r.error().message);
      return kExitRuntime;
    }
    ++written;
  }
  if (auto r = writer->close(); !r) {
    fmt::print(stderr, "hypergate gen itch: {}\n", r.error().message);
    return kExitRuntime;
  }
  fmt::print("gen itch: {} messages for {} symbols in {} packets written to {} ({} packets left out by the loss model)\n",
             gen->messages_generated(), gen->symbols().size(), written, a.out, dropped);
  return kExitOk;
}

}  // namespace hypergate::gateway
