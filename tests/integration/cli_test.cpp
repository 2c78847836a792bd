// The real `hypergate` binary, driven as an operator would: exit codes and what it prints for
// version, help, config check (valid, unknown key, missing type, wrong type, bad --set, missing
// file, syntax error), run (to the end of a finite source, and stopped by SIGTERM), and the
// subcommands whose engines do not exist yet. (`hist` has its own hist_test.cpp.)
#include <signal.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "gateway_process.hpp"

namespace {

using hypergate::test::GatewayProcess;
using hypergate::test::kGatewayBinary;

const std::string kDefaultConfig = HG_SOURCE_DIR "/configs/default.toml";
// The synthetic deployment: no sockets but the admin listener, so runs are quick and need no fixed port.
const std::string kSyntheticConfig = HG_SOURCE_DIR "/configs/synthetic.toml";
// Runs bind the admin listener on an ephemeral port, so parallel tests never share 9901.
const std::string kEphemeralAdmin = "admin.listen=127.0.0.1:0";

struct Outcome {
  int exit_code = -1;     // -1 when killed by a signal
  int term_signal = 0;
  std::string output;     // stdout and stderr, interleaved as written
  bool hung = false;      // the hang guard (kGatewayHangGuardMs) expired and the child was killed
};

// Runs the binary with `args` to its end. With `sigterm_when_running`, sends SIGTERM once it has
// printed "hypergate: running" (its signal handlers are installed before that line is printed).
Outcome run_binary(const std::vector<std::string>& args, bool sigterm_when_running = false) {
  Outcome out;
  GatewayProcess gw(args);
  if (!gw.spawned()) {
    ADD_FAILURE() << "posix_spawn(" << kGatewayBinary << ") failed";
    return out;
  }
  if (sigterm_when_running && gw.wait_for("hypergate: running")) kill(gw.pid(), SIGTERM);
  out.exit_code = gw.wait_exit();
  out.term_signal = gw.term_signal();
  out.hung = gw.hung();
  out.output = gw.output();
  return out;
}

class CliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/hg_cli_test_XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override {
    for (const auto& f : files_) std::remove(f.c_str());
    rmdir(dir_.c_str());
  }
  std::string write(const std::string& name, const std::string& text) {
    const std::string path = dir_ + "/" + name;
    std::ofstream(path) << text;
    files_.push_back(path);
    return path;
  }
  std::string dir_;
  std::vector<std::string> files_;
};

#define EXPECT_OUTPUT_HAS(outcome, text) \
  EXPECT_NE((outcome).output.find(text), std::string::npos) << "missing \"" << (text) << "\" in:\n" << (outcome).output

TEST_F(CliTest, Version) {
  const Outcome r = run_binary({"version"});
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_OUTPUT_HAS(r, "hypergate 0.1.0");
  EXPECT_OUTPUT_HAS(r, "compiler: ");
  EXPECT_OUTPUT_HAS(r, "build type: ");
  EXPECT_OUTPUT_HAS(r, "tsc: ");
}

TEST_F(CliTest, HelpForEverySubcommand) {
  const Outcome top = run_binary({"--help"});
  EXPECT_EQ(top.exit_code, 0);
  for (const char* sub : {"version", "config", "run", "replay", "hist"}) EXPECT_OUTPUT_HAS(top, sub);
  const std::vector<std::vector<std::string>> helps = {
      {"version", "--help"}, {"config", "--help"}, {"config", "check", "--help"}, {"run", "--help"},
      {"replay", "--help"},  {"hist", "--help"}};
  for (const auto& args : helps) {
    const Outcome r = run_binary(args);
    EXPECT_EQ(r.exit_code, 0) << args[0];
    EXPECT_OUTPUT_HAS(r, "Usage:");
  }
  EXPECT_OUTPUT_HAS(run_binary({"run", "--help"}), "--set");
  EXPECT_OUTPUT_HAS(run_binary({"run", "--help"}), "--plugin");
  EXPECT_OUTPUT_HAS(run_binary({"config", "check", "--help"}), "--plugin");
  EXPECT_OUTPUT_HAS(run_binary({"replay", "--help"}), "--book-json");
  EXPECT_OUTPUT_HAS(run_binary({"hist", "--help"}), "--csv");
}

TEST_F(CliTest, UsageErrorsExitTwo) {
  const Outcome unknown = run_binary({"frobnicate"});
  EXPECT_EQ(unknown.exit_code, 2);
  EXPECT_OUTPUT_HAS(unknown, "frobnicate");
  EXPECT_OUTPUT_HAS(unknown, "--help");
  EXPECT_EQ(run_binary({}).exit_code, 2);
  EXPECT_EQ(run_binary({"run"}).exit_code, 2);  // --config is required
  EXPECT_EQ(run_binary({"config", "check"}).exit_code, 2);
  EXPECT_EQ(run_binary({"version", "--bogus"}).exit_code, 2);
  const Outcome plugin = run_binary({"run", "--config", kSyntheticConfig, "--plugin", "/nonexistent/libnope.so"});
  EXPECT_EQ(plugin.exit_code, 2);
  EXPECT_OUTPUT_HAS(plugin, "/nonexistent/libnope.so");
}

#ifdef HG_EXAMPLE_PLUGIN
// The example plugin end to end through the real binary: its types are unknown without --plugin,
// validate with it, and a run moves every line of the input file into the collect sink's file
// through the "validated" pipeline (which denies one key).
TEST_F(CliTest, RunLoadsAPluginAndUsesItsAdapters) {
  const std::string input = write("lines.txt", "AAPL 1\nMSFT 2\nTEST 3\nAAPL 4\n");
  const std::string output = dir_ + "/collected.txt";
  files_.push_back(output);
  const std::string path = write("plugin.toml", "[source.lines]\ntype = \"example.lines\"\npath = \"" + input +
                                                    "\"\npipeline = \"validated\"\n[source.lines.pipeline_options]\n"
                                                    "key = \"first_word\"\ndeny_keys = [\"TEST\"]\n"
                                                    "[sink.audit]\ntype = \"example.collect\"\npath = \"" +
                                                    output + "\"\n");
  const Outcome without = run_binary({"config", "check", path});
  EXPECT_EQ(without.exit_code, 2);
  EXPECT_OUTPUT_HAS(without, "unknown source type 'example.lines'");
  const Outcome check = run_binary({"config", "check", path, "--plugin", HG_EXAMPLE_PLUGIN});
  EXPECT_EQ(check.exit_code, 0) << check.output;
  const Outcome r = run_binary({"run", "--config", path, "--plugin", HG_EXAMPLE_PLUGIN, "--set", kEphemeralAdmin});
  ASSERT_FALSE(r.hung) << r.output;
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_OUTPUT_HAS(r, "totals: 4 messages in");
  EXPECT_OUTPUT_HAS(r, "rejected 1");
  std::ifstream in(output);
  std::string collected((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_NE(collected.find("AAPL 1"), std::string::npos) << collected;
  EXPECT_NE(collected.find("MSFT 2"), std::string::npos) << collected;
  EXPECT_NE(collected.find("AAPL 4"), std::string::npos) << collected;
  EXPECT_EQ(collected.find("TEST 3"), std::string::npos) << collected;
}
#endif

TEST_F(CliTest, ConfigCheckDefaultIsValid) {
  const Outcome r = run_binary({"config", "check", kSyntheticConfig});
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_OUTPUT_HAS(r, "config ok: 1 source, 1 sink");
  // The market-data gateway: feed, fire, catchall and the demo capture; subscribers, republish, discard, exchange.
  const Outcome md = run_binary({"config", "check", kDefaultConfig});
  EXPECT_EQ(md.exit_code, 0) << md.output;
  EXPECT_OUTPUT_HAS(md, "config ok: 4 sources, 4 sinks");
}

TEST_F(CliTest, ConfigCheckUnknownKeyNamesFileLineColumn) {
  const std::string path = write("unknown.toml", R"([gateway]
workers = 1

[source.gen]
type = "synthetic"
  colour = "red"
)");
  const Outcome r = run_binary({"config", "check", path});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_OUTPUT_HAS(r, path + ":6:3: source.gen.colour: unknown key");
}

TEST_F(CliTest, ConfigCheckMissingType) {
  const std::string path = write("notype.toml", "[source.gen]\nrate = 5\n");
  const Outcome r = run_binary({"config", "check", path});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_OUTPUT_HAS(r, path + ":1:1: source.gen.type: missing required key 'type'");
}

TEST_F(CliTest, ConfigCheckUnknownTypeListsRegisteredTypes) {
  const std::string path = write("badtype.toml", "[sink.out]\ntype = \"carrier-pigeon\"\n");
  const Outcome r = run_binary({"config", "check", path});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_OUTPUT_HAS(r, path + ":2:8: sink.out.type: unknown sink type 'carrier-pigeon'");
  EXPECT_OUTPUT_HAS(r, "null");
}

TEST_F(CliTest, ConfigCheckWrongTypeAndEveryError) {
  const std::string path = write("wrong.toml", "[gateway]\nworkers = \"two\"\n[valves]\nlanes = 3\n");
  const Outcome r = run_binary({"config", "check", path});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_OUTPUT_HAS(r, path + ":2:11: gateway.workers: expected an integer, got a string \"two\"");
  EXPECT_OUTPUT_HAS(r, path + ":4:9: valves.lanes: 3 is not a power of two");
}

TEST_F(CliTest, ConfigCheckSetOverrides) {
  const Outcome ok = run_binary({"config", "check", kSyntheticConfig, "--set", "source.synth.rate=5",
                                 "--set", "admin.listen=127.0.0.1:19901"});
  EXPECT_EQ(ok.exit_code, 0) << ok.output;
  const Outcome wrong = run_binary({"config", "check", kSyntheticConfig, "--set", "gateway.workers=lots"});
  EXPECT_EQ(wrong.exit_code, 2);
  EXPECT_OUTPUT_HAS(wrong, "--set:1:17: gateway.workers: expected an integer");
  const Outcome malformed = run_binary({"config", "check", kSyntheticConfig, "--set", "gateway.workers"});
  EXPECT_EQ(malformed.exit_code, 2);
  EXPECT_OUTPUT_HAS(malformed, "--set:1:1: gateway.workers: expected key=value");
}

TEST_F(CliTest, ConfigCheckMissingFile) {
  const std::string path = dir_ + "/does-not-exist.toml";
  const Outcome r = run_binary({"config", "check", path});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_OUTPUT_HAS(r, "cannot read config file '" + path + "'");
  EXPECT_OUTPUT_HAS(r, "No such file or directory");
}

TEST_F(CliTest, ConfigCheckSyntaxError) {
  const std::string path = write("syntax.toml", "[gateway]\nworkers = 1\nidle = \"busy\n");
  const Outcome r = run_binary({"config", "check", path});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_OUTPUT_HAS(r, path + ":3:");
}

TEST_F(CliTest, RunStopsWhenTheSourceIsFinished) {
  const std::string path = write("finite.toml", R"([source.gen]
type = "synthetic"
rate = 0
count = 1000
[sink.out]
type = "null"
)");
  const Outcome r = run_binary({"run", "--config", path, "--set", kEphemeralAdmin});
  ASSERT_FALSE(r.hung) << r.output;
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_OUTPUT_HAS(r, "all sources finished");
  EXPECT_OUTPUT_HAS(r, "source gen (synthetic): 1000 messages");
  EXPECT_OUTPUT_HAS(r, "sink out (null): 1000 messages");
  EXPECT_OUTPUT_HAS(r, "totals: 1000 messages in");
}

TEST_F(CliTest, RunStopsOnSigtermAndPrintsTotals) {
  const Outcome r = run_binary({"run", "--config", kSyntheticConfig, "--set", "source.synth.rate=20000", "--set",
                                kEphemeralAdmin},
                               /*sigterm_when_running=*/true);
  ASSERT_FALSE(r.hung) << r.output;
  EXPECT_EQ(r.term_signal, 0) << r.output;
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_OUTPUT_HAS(r, "stopped (SIGTERM)");
  EXPECT_OUTPUT_HAS(r, "totals: ");
}

TEST_F(CliTest, RunWithConfigErrorsExitsTwo) {
  const std::string path = write("runbad.toml", "[source.gen]\ntype = \"synthetic\"\nrate = -1\n");
  const Outcome r = run_binary({"run", "--config", path});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_OUTPUT_HAS(r, path + ":3:8: source.gen.rate: value -1 is out of range");
  const std::string empty = write("empty.toml", "[gateway]\nworkers = 1\n");
  const Outcome nothing = run_binary({"run", "--config", empty});
  EXPECT_EQ(nothing.exit_code, 2);
  EXPECT_OUTPUT_HAS(nothing, "nothing to run");
}

TEST_F(CliTest, ReplayOfABadCaptureAndHistOfAMissingLogFailClearly) {
  const std::string missing = dir_ + "/capture.pcap";
  const Outcome replay = run_binary({"replay", missing, "--speed", "max"});
  EXPECT_EQ(replay.exit_code, 1);
  EXPECT_OUTPUT_HAS(replay, "hypergate replay: ");
  EXPECT_OUTPUT_HAS(replay, missing);
  const std::string garbage = write("garbage.pcap", "this is not a capture file at all");
  const Outcome bad = run_binary({"replay", garbage});
  EXPECT_EQ(bad.exit_code, 1);
  EXPECT_OUTPUT_HAS(bad, garbage);
  const Outcome speed = run_binary({"gen", "itch", "--out", dir_ + "/x.pcap", "--loss", "2"});
  EXPECT_EQ(speed.exit_code, 2);
  const std::string missing_log = dir_ + "/a.hlog";  // the rest of `hist` is in hist_test.cpp
  const Outcome hist = run_binary({"hist", missing_log, "--csv"});
  EXPECT_EQ(hist.exit_code, 1);
  EXPECT_OUTPUT_HAS(hist, "hypergate hist: ");
  EXPECT_OUTPUT_HAS(hist, missing_log);
  EXPECT_EQ(run_binary({"replay"}).exit_code, 2);  // CAPTURE is required
}

}  // namespace
