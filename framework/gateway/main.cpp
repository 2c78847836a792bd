// `hypergate`: the gateway executable. Subcommands:
//   version                              version, compiler, build type, clock source
//   config check FILE [--set k=v]...     validate a deployment without running it
//   run --config FILE [--set k=v]...     run a deployment until SIGINT/SIGTERM or end of input
//   replay CAPTURE ...                   replay a capture through the itch pipeline (market_commands.hpp)
//   gen itch --out F ...                 write a synthetic ITCH 5.0 / MoldUDP64 capture
//   hist FILE... [--tag T]...            percentile tables, CSV, SVG plot of interval logs (hist_command.hpp)
// Exit codes: 0 ok, 1 runtime error, 2 usage or configuration error.
#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <string>
#include <vector>

#include "hypergate/adapter/plugin.hpp"
#include "hypergate/config/config.hpp"
#include "hypergate/core/clock.hpp"
#include "hist_command.hpp"
#include "market_commands.hpp"
#include "plan.hpp"
#include "run.hpp"

#ifndef HG_VERSION
#define HG_VERSION "0.0.0"
#endif
#ifndef HG_BUILD_TYPE
#define HG_BUILD_TYPE "unknown"
#endif

namespace {

using namespace hypergate;

constexpr int kExitOk = 0;
constexpr int kExitRuntime = 1;
constexpr int kExitUsage = 2;

std::string compiler() {
#if defined(__clang__)
  return std::string("clang ") + __clang_version__;
#elif defined(__GNUC__)
  return std::string("GCC ") + __VERSION__;
#else
  return "unknown";
#endif
}

int cmd_version() {
  const TscClock& clock = TscClock::instance();
  fmt::print("hypergate {}\n", HG_VERSION);
  fmt::print("compiler: {}\n", compiler());
  fmt::print("build type: {}{}\n", HG_BUILD_TYPE,
#if defined(HG_SANITIZED)
             " (sanitized)"
#else
             ""
#endif
  );
  if (clock.uses_tsc()) {
    fmt::print("tsc: yes (invariant TSC, {:.3f} ticks/ns)\n", clock.ticks_per_ns());
  } else {
    fmt::print("tsc: no (CLOCK_MONOTONIC{})\n", TscClock::cpu_has_invariant_tsc() ? ", forced by HG_CLOCK" : "");
  }
  return kExitOk;
}

// Loads FILE with overrides and builds the plan; prints every problem to stderr.
std::optional<gateway::GatewayPlan> load_plan(const char* cmd, const std::string& file,
                                              const std::vector<std::string>& sets,
                                              std::unique_ptr<config::Document>& doc_out) {
  auto doc = config::Document::load(file, sets);
  if (!doc) {
    fmt::print(stderr, "{}\nhypergate {}: cannot load configuration\n", doc.error().message, cmd);
    return std::nullopt;
  }
  doc_out = std::move(doc).value();
  auto plan = gateway::build_plan(*doc_out);
  if (!plan) {
    const std::size_t n = doc_out->diagnostics().size();
    fmt::print(stderr, "{}hypergate {}: {} error{} in {}\n", plan.error().message, cmd, n, n == 1 ? "" : "s", file);
    return std::nullopt;
  }
  return std::move(plan).value();
}

// Plugins register adapter types, so they load before the plan is built. A library that cannot be
// loaded is a usage error: the message says which check failed (file, dlopen, symbol, ABI, registration).
bool load_plugins(const char* cmd, const std::vector<std::string>& libs) {
  for (const auto& lib : libs) {
    auto info = adapter::load_plugin(lib);
    if (!info) {
      fmt::print(stderr, "hypergate {}: --plugin {}: {}\n", cmd, lib, info.error().message);
      return false;
    }
    fmt::print(stderr, "hypergate {}: plugin {} added {} source type(s), {} sink type(s)\n", cmd, lib,
               info->sources_added, info->sinks_added);
  }
  return true;
}

int cmd_config_check(const std::string& file, const std::vector<std::string>& sets,
                     const std::vector<std::string>& plugins) {
  if (!load_plugins("config check", plugins)) return kExitUsage;
  std::unique_ptr<config::Document> doc;
  auto plan = load_plan("config check", file, sets, doc);
  if (!plan) return kExitUsage;
  fmt::print("config ok: {} source{}, {} sink{}\n", plan->sources.size(), plan->sources.size() == 1 ? "" : "s",
             plan->sinks.size(), plan->sinks.size() == 1 ? "" : "s");
  return kExitOk;
}

int cmd_run(const std::string& file, const std::vector<std::string>& sets, gateway::RunOptions& options) {
  if (!load_plugins("run", options.plugins)) return kExitUsage;
  std::unique_ptr<config::Document> doc;
  auto plan = load_plan("run", file, sets, doc);
  if (!plan) return kExitUsage;
  if (plan->sources.empty()) {
    fmt::print(stderr, "hypergate run: {} defines no [source.<name>]: nothing to run\n", file);
    return kExitUsage;
  }
  return gateway::run_gateway(*plan, options);
}

// --hlog, --hlog-interval, --trace-every for `run` and `replay` (a bad duration is a usage error, exit 2).
void add_histogram_options(CLI::App* cmd, gateway::HistogramOutputs& h) {
  cmd->add_option("--hlog", h.hlog, "Write per-stage latency as an HdrHistogram interval log (a tag per stage)")
      ->type_name("FILE");
  cmd->add_option_function<std::string>(
         "--hlog-interval",
         [&h](const std::string& v) {
           const auto ns = config::parse_duration_ns(v);
           if (!ns || *ns < 1'000'000) throw CLI::ValidationError("--hlog-interval", "a duration >= 1ms, e.g. 1s or 250ms");
           h.hlog_interval_ns = *ns;
         },
         "Interval of the log lines (default 1s)")
      ->type_name("DURATION");
  cmd->add_option("--trace-every", h.trace_every,
                  "Time the sampled stages (decode, pipeline, store) on 1 burst in N (1 = all, 0 = off)")
      ->capture_default_str();
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"HyperGate: a kernel-bypass message gateway (sources -> pipeline -> valves -> sinks)", "hypergate"};
  app.require_subcommand(1, 1);
  app.footer("Exit codes: 0 ok, 1 runtime error, 2 usage or configuration error.");

  // version
  auto* version = app.add_subcommand("version", "Print version, compiler, build type and clock source");

  // config check
  auto* config_cmd = app.add_subcommand("config", "Work with configuration files");
  config_cmd->require_subcommand(1, 1);
  std::string check_file;
  std::vector<std::string> check_sets;
  auto* check = config_cmd->add_subcommand("check", "Validate a configuration (every section and adapter) without running");
  check->add_option("FILE", check_file, "TOML configuration file")->required();
  check->add_option("--set", check_sets, "Override a key: --set section.key=value (repeatable)")
      ->type_name("KEY=VALUE");
  std::vector<std::string> check_plugins;
  check->add_option("--plugin", check_plugins, "Load an adapter plugin first, so its types validate (repeatable)")
      ->type_name("LIB.so");

  // run
  auto* run = app.add_subcommand("run", "Run a deployment until SIGINT/SIGTERM or until every source is finished");
  std::string run_file;
  std::vector<std::string> run_sets;
  gateway::RunOptions run_options;
  run->add_option("-c,--config", run_file, "TOML configuration file")->required();
  run->add_option("--set", run_sets, "Override a key: --set section.key=value (repeatable)")->type_name("KEY=VALUE");
  run->add_option("--plugin", run_options.plugins, "Load an adapter plugin (shared library; repeatable)")
      ->type_name("LIB.so");
  run->add_flag("-q,--quiet", run_options.quiet, "No per-second stats line (totals are still printed)");
  add_histogram_options(run, run_options.histograms);

  // replay
  auto* replay = app.add_subcommand("replay", "Replay a pcap/pcapng capture of MoldUDP64 (ITCH 5.0) through the itch pipeline");
  gateway::ReplayArgs replay_args;
  replay->add_option("CAPTURE", replay_args.capture, "pcap/pcapng file of MoldUDP64 (ITCH 5.0) datagrams")->required();
  replay->add_option("--speed", replay_args.speed, "max, realtime (= 1x), Nx (10x, 0.5x) or a fixed rate (100000pps)")
      ->capture_default_str();
  replay->add_option("--config", replay_args.config,
                     "Gateway configuration (sinks, admin, workers); the replay adds [source.replay] to it")
      ->type_name("FILE");
  replay->add_option("--set", replay_args.sets, "Override a key, e.g. source.replay.pipeline_options.output=both")
      ->type_name("KEY=VALUE");
  replay->add_option("--book-json", replay_args.book_json, "Write the final top of book as JSON to FILE (- = stdout)")->type_name("FILE");
  replay->add_option("--port", replay_args.port, "Only UDP datagrams to this destination port (0 = every UDP payload)");
  replay->add_option("--loop", replay_args.loop, "Passes over the capture")->capture_default_str()->check(CLI::PositiveNumber);
  replay->add_option("--send", replay_args.send, "Send the datagrams to HOST:PORT on the capture's schedule instead")
      ->type_name("HOST:PORT");
  replay->add_option("--interface", replay_args.interface, "--send to a multicast group: outgoing interface (IPv4)")
      ->type_name("IP");
  replay->add_option("--via", replay_args.via, "Feed path: 'inprocess' or 'dpdk' (net_pcap vdev)")->capture_default_str();
  replay->add_option("--plugin", replay_args.plugins, "Load an adapter plugin (repeatable)")->type_name("LIB.so");
  replay->add_flag("-q,--quiet", replay_args.quiet, "No progress bar");
  add_histogram_options(replay, replay_args.histograms);

  // gen itch
  auto* gen = app.add_subcommand("gen", "Generate test data");
  gen->require_subcommand(1, 1);
  auto* gen_itch = gen->add_subcommand("itch", "Write a synthetic, protocol-exact ITCH 5.0 / MoldUDP64 capture (pcap)");
  gateway::GenItchArgs gen_args;
  gen_itch->add_option("-o,--out", gen_args.out, "Capture file to write")->required()->type_name("FILE");
  gen_itch->add_option("--messages", gen_args.messages, "ITCH messages in total")->capture_default_str();
  gen_itch->add_option("--symbols", gen_args.symbols, "Tickers (comma separated); default: --symbol-count generated ones")
      ->delimiter(',');
  gen_itch->add_option("--symbol-count", gen_args.symbol_count, "Generated tickers when --symbols is not given")
      ->capture_default_str();
  gen_itch->add_option("--seed", gen_args.seed, "Random seed (same seed, same bytes)")->capture_default_str();
  gen_itch->add_option("--rate", gen_args.rate, "Messages per second of feed time (timestamp spacing)")->capture_default_str();
  gen_itch->add_option("--session", gen_args.session, "MoldUDP64 session (<= 10 characters)")->capture_default_str();
  gen_itch->add_option("--loss", gen_args.loss, "Probability of leaving a packet out")->capture_default_str()
      ->check(CLI::Range(0.0, 1.0));
  gen_itch->add_option("--drop", gen_args.drops, "Leave out the packets carrying sequences FIRST-LAST (repeatable)")
      ->type_name("FIRST-LAST");
  gen_itch->add_option("--dst", gen_args.dst, "Destination IPv4:PORT of the frames")->capture_default_str();
  gen_itch->add_option("--src", gen_args.src, "Source IPv4:PORT of the frames")->capture_default_str();
  gen_itch->add_option("--max-packet-bytes", gen_args.max_packet_bytes, "Largest MoldUDP64 datagram")->capture_default_str();

  // hist
  auto* hist = app.add_subcommand("hist", "Summarise HdrHistogram interval logs (percentile table, CSV, SVG plot)");
  gateway::HistArgs hist_args;
  hist->add_option("FILE", hist_args.files, "Interval log file(s) written by `run|replay --hlog`")->required();
  hist->add_option("--tag", hist_args.tags, "Only intervals with this tag, e.g. a stage name (repeatable)");
  hist->add_option("--start", hist_args.start, "Skip intervals starting before this offset into the log (e.g. 10s)")
      ->type_name("DURATION");
  hist->add_option("--end", hist_args.end, "Skip intervals starting after this offset into the log (e.g. 60s)")
      ->type_name("DURATION");
  hist->add_flag("--csv", hist_args.csv, "Print the percentile rows as CSV (file,tag,value,percentile,total_count,inverse)");
  hist->add_option("--plot", hist_args.plot, "Write a percentile-spectrum plot (SVG) of every file and tag")
      ->type_name("OUT.svg");
  hist->add_option("--expected-interval", hist_args.expected_interval,
                   "Correct for coordinated omission, as HdrHistogram does, with this expected interval")
      ->type_name("DURATION");
  hist->add_option("--unit", hist_args.unit, "Value unit of the tables and the plot (default: us; plot: automatic)")
      ->type_name("ns|us|ms");
  hist->add_option("--ticks", hist_args.ticks, "Percentile steps per halving of the distance to 100%")
      ->capture_default_str();

  // An unknown command word gets a plain answer instead of CLI11's "a subcommand is required".
  if (argc > 1 && argv[1][0] != '-') {
    const std::string word = argv[1];
    bool known = false;
    for (const auto* sub : app.get_subcommands({})) known = known || sub->get_name() == word;
    if (!known) {
      fmt::print(stderr, "hypergate: unknown command '{}'\nRun with --help for more information.\n", word);
      return kExitUsage;
    }
  }

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int code = app.exit(e);  // prints help (stdout) or the error with a --help hint (stderr)
    return code == 0 ? kExitOk : kExitUsage;
  }

  try {
    if (*version) return cmd_version();
    if (*check) return cmd_config_check(check_file, check_sets, check_plugins);
    if (*run) return cmd_run(run_file, run_sets, run_options);
    if (*replay) return gateway::cmd_replay(replay_args);
    if (*gen_itch) return gateway::cmd_gen_itch(gen_args);
    if (*hist) return gateway::cmd_hist(hist_args);
  } catch (const std::exception& e) {  // cold path only: report, never crash
    fmt::print(stderr, "hypergate: error: {}\n", e.what());
    return kExitRuntime;
  }
  return kExitUsage;
}
