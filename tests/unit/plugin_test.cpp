// Plugin loading: the example plugin (adapters/examples) loads and works end to end; each failure
// mode gives its own clear error. The library paths come from tests/integration/plugin.cmake.
// PluginEndToEnd also runs on an out-of-tree build of the example (plugin_out_of_tree test), which
// passes its library in HG_PLUGIN_UNDER_TEST.
#include "hypergate/adapter/plugin.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "hypergate/config/config.hpp"
#include "hypergate/route/pipeline.hpp"
#include "hypergate/route/registry.hpp"

namespace hypergate::adapter {
namespace {

bool has_type(const std::vector<Registry::Entry>& entries, std::string_view type) {
  return std::any_of(entries.begin(), entries.end(), [&](const auto& e) { return e.type == type; });
}
bool contains(const std::string& text, std::string_view part) { return text.find(part) != std::string::npos; }

std::string temp_dir() {
  auto dir = std::filesystem::temp_directory_path() / ("hg_plugin_test_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  return dir.string();
}

TEST(Plugin, LoadsTheExampleAndRegistersItsTypes) {
  Registry registry;
  auto r = load_plugin(HG_EXAMPLE_PLUGIN, registry);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->sources_added, 1u);
  EXPECT_EQ(r->sinks_added, 1u);
  EXPECT_TRUE(has_type(registry.sources(), "example.lines"));
  EXPECT_TRUE(has_type(registry.sinks(), "example.collect"));
  EXPECT_NE(registry.source("example.lines"), nullptr);
}

TEST(Plugin, LoadingTwiceIntoOneRegistryIsADuplicateTypeError) {
  Registry registry;
  ASSERT_TRUE(load_plugin(HG_EXAMPLE_PLUGIN, registry).ok());
  auto again = load_plugin(HG_EXAMPLE_PLUGIN, registry);
  ASSERT_FALSE(again.ok());
  EXPECT_TRUE(contains(again.error().message, "registration failed")) << again.error().message;
  EXPECT_TRUE(contains(again.error().message, "already registered")) << again.error().message;
}

TEST(Plugin, MissingFile) {
  Registry registry;
  auto r = load_plugin("/nonexistent/libnothing.so", registry);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, Status::NotFound);
  EXPECT_TRUE(contains(r.error().message, "/nonexistent/libnothing.so")) << r.error().message;
  EXPECT_TRUE(contains(r.error().message, "No such file")) << r.error().message;
  EXPECT_FALSE(load_plugin("", registry).ok());
}

TEST(Plugin, NotASharedLibraryReportsTheDlopenError) {
  const std::string path = temp_dir() + "/not_elf.so";
  std::ofstream(path) << "this is text, not ELF\n";
  Registry registry;
  auto r = load_plugin(path, registry);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, Status::IoError);
  EXPECT_TRUE(contains(r.error().message, "cannot load")) << r.error().message;
  EXPECT_TRUE(contains(r.error().message, "not_elf.so")) << r.error().message;
  auto dir = load_plugin(temp_dir(), registry);
  ASSERT_FALSE(dir.ok());
  EXPECT_TRUE(contains(dir.error().message, "not a regular file")) << dir.error().message;
}

TEST(Plugin, LibraryWithoutPluginSymbols) {
  Registry registry;
  auto r = load_plugin(HG_NOT_A_PLUGIN, registry);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, Status::NotFound);
  EXPECT_TRUE(contains(r.error().message, "missing symbol hypergate_plugin_abi_version")) << r.error().message;
}

TEST(Plugin, MissingRegistrationSymbol) {
  Registry registry;
  auto r = load_plugin(HG_MISSING_SYMBOL_PLUGIN, registry);
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(contains(r.error().message, "missing symbol hypergate_plugin_register")) << r.error().message;
}

TEST(Plugin, WrongAbiVersionIsRefusedBeforeRegistering) {
  Registry registry;
  auto r = load_plugin(HG_WRONG_ABI_PLUGIN, registry);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, Status::Unsupported);
  EXPECT_TRUE(contains(r.error().message, "ABI version 999")) << r.error().message;
  EXPECT_TRUE(contains(r.error().message, "version " + std::to_string(kPluginAbiVersion))) << r.error().message;
}

TEST(Plugin, FailingRegistrationCarriesThePluginsReason) {
  Registry registry;
  auto r = load_plugin(HG_FAILING_PLUGIN, registry);
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(contains(r.error().message, "test plugin refuses to register")) << r.error().message;
  EXPECT_TRUE(registry.sources().empty());
}

/// Sends everything the pipeline emits to one sink, a burst at a time.
class ToSink final : public route::Downstream {
 public:
  explicit ToSink(Sink& sink) : sink_(sink) {}
  void deliver(std::span<const Message> messages, std::span<const route::Route>) noexcept override {
    Burst<> b;
    for (const Message& m : messages) (void)b.push_back(m);
    accepted += sink_.send(b);
  }
  std::size_t accepted = 0;

 private:
  Sink& sink_;
};

// Loads a plugin, builds example.lines and example.collect from a config file, and runs the lines
// through the "validated" pipeline into the sink: what `hypergate run --plugin` does, in one thread.
TEST(PluginEndToEnd, LinesSourceThroughPipelineIntoCollectSink) {
  const char* env = std::getenv("HG_PLUGIN_UNDER_TEST");
  const std::string plugin = env != nullptr && *env != '\0' ? env : HG_EXAMPLE_PLUGIN;
  Registry registry;
  auto loaded = load_plugin(plugin, registry);
  ASSERT_TRUE(loaded.ok()) << loaded.error().message;

  const std::string dir = temp_dir();
  const std::string in_path = dir + "/orders.txt";
  const std::string out_path = dir + "/audit.log";
  std::filesystem::remove(out_path);
  std::vector<std::string> lines;
  {
    std::ofstream in(in_path);
    for (int i = 0; i < 100; ++i) {
      lines.push_back((i % 10 == 3 ? "TEST" : "SYM" + std::to_string(i % 7)) + " order " + std::to_string(i));
      in << lines.back() << (i % 2 ? "\r\n" : "\n");
      if (i == 50) in << "\n";  // a blank line carries no message
    }
  }
  const std::string toml = "[source.replay]\ntype = \"example.lines\"\npath = \"" + in_path +
                           "\"\n[source.replay.pipeline_options]\nkey = \"first_word\"\ndeny_keys = [\"TEST\"]\n"
                           "[sink.audit]\ntype = \"example.collect\"\npath = \"" + out_path + "\"\n";
  auto doc = config::Document::parse(toml, "e2e.toml");
  ASSERT_TRUE(doc.ok()) << doc.error().message;
  auto source_section = (*doc)->instances("source").at(0);
  auto sink_section = (*doc)->instances("sink").at(0);
  ASSERT_EQ(source_section.string("type", ""), "example.lines");
  ASSERT_EQ(sink_section.string("type", ""), "example.collect");
  auto options = source_section.table("pipeline_options");

  Context ctx;
  ctx.name = "replay";
  ctx.id = 3;
  auto source = (*registry.source("example.lines"))(source_section, ctx);
  ASSERT_TRUE(source.ok()) << source.error().message;
  ctx.name = "audit";
  ctx.id = 0;
  auto sink = (*registry.sink("example.collect"))(sink_section, ctx);
  ASSERT_TRUE(sink.ok()) << sink.error().message;
  route::PipelineContext pctx;
  pctx.sink_count = 1;
  pctx.sink_names = {"audit"};
  pctx.source_id = 3;
  auto pipeline = route::PipelineRegistry::global().create("validated", options, pctx);
  ASSERT_TRUE(pipeline.ok()) << pipeline.error().message;
  EXPECT_TRUE((*doc)->diagnostics().empty()) << (*doc)->diagnostics().format();

  ASSERT_TRUE((*source)->start().ok());
  ASSERT_TRUE((*sink)->start().ok());
  ToSink down(**sink);
  route::Emitter emitter(down);
  Burst<> burst;
  int polls = 0;
  while (!(*source)->finished() && polls < 1000) {
    burst.clear();
    (*source)->poll(burst);
    (*pipeline)->process(burst, emitter);
    (*source)->release(burst);
    ++polls;
  }
  (*sink)->flush();
  (*sink)->stop();
  (*source)->stop();

  EXPECT_EQ(polls, 4) << "100 lines in bursts of 32";
  const auto c = (*pipeline)->counters();
  EXPECT_EQ(c.in, 100u);
  EXPECT_EQ(c.emitted, 90u);
  EXPECT_EQ(c.rejected, 10u);
  EXPECT_EQ(c.gaps, 0u) << "the source numbers its lines consecutively";
  EXPECT_EQ((*source)->stats().messages, 100u);
  EXPECT_EQ((*sink)->stats().messages, 90u);
  EXPECT_EQ(down.accepted, 90u);

  std::ifstream out(out_path);
  std::vector<std::string> got;
  for (std::string line; std::getline(out, line);) got.push_back(line);
  std::vector<std::string> want;
  for (const auto& l : lines) {
    if (!l.starts_with("TEST")) want.push_back(l);
  }
  EXPECT_EQ(got, want);
}

}  // namespace
}  // namespace hypergate::adapter
