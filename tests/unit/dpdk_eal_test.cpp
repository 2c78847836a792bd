// The DPDK environment's pure parts, without starting an EAL (that needs its own process: see
// tests/integration/dpdk_test.cpp): [dpdk] keys -> settings -> EAL arguments, queue claims, and the
// AdapterCounters value type the port figures travel in.
#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "dpdk/eal.hpp"
#include "hypergate/adapter/adapter_counters.hpp"
#include "hypergate/config/config.hpp"

namespace {

namespace dp = hypergate::dpdk;

bool has(const std::vector<std::string>& v, const std::string& s) { return std::find(v.begin(), v.end(), s) != v.end(); }

dp::EalSettings read(const std::string& text, std::string* errors = nullptr) {
  auto doc = hypergate::config::Document::parse(text, "t.toml");
  EXPECT_TRUE(doc.ok());
  auto section = doc.value()->section("dpdk");
  dp::read_dpdk_section(section);
  section.finish();
  if (errors != nullptr) *errors = doc.value()->diagnostics().format();
  return dp::current_settings();
}

TEST(dpdk_eal, DefaultsGiveHugepagesInMemoryAndTheThreadsCpus) {
  const auto a = dp::eal_arguments(read(""));
  EXPECT_EQ(a.front(), "hypergate");
  EXPECT_TRUE(has(a, "--in-memory"));
  EXPECT_FALSE(has(a, "--no-huge"));
  EXPECT_TRUE(std::any_of(a.begin(), a.end(), [](const std::string& s) { return s.rfind("--lcores=0@(", 0) == 0; }));
  EXPECT_TRUE(has(a, "-m") && has(a, "256"));
}

TEST(dpdk_eal, NoHugeUsesNoShconfBecauseInMemoryIsRefusedThere) {
  const auto a = dp::eal_arguments(read("[dpdk]\nno_huge = true\nno_pci = true\ncores = [1, 3]\nmemory = 64\n"
                                        "vdevs = [\"net_ring0\", \"net_pcap0,rx_pcap=a.pcap\"]\n"
                                        "eal_args = [\"--file-prefix=x\"]\nlog_level = \"error\"\n"));
  EXPECT_TRUE(has(a, "--no-huge"));
  EXPECT_TRUE(has(a, "--no-shconf"));
  EXPECT_FALSE(has(a, "--in-memory"));
  EXPECT_TRUE(has(a, "--no-pci"));
  EXPECT_TRUE(has(a, "-l") && has(a, "1,3"));
  EXPECT_TRUE(has(a, "64"));
  EXPECT_TRUE(has(a, "--vdev=net_ring0"));
  EXPECT_TRUE(has(a, "--vdev=net_pcap0,rx_pcap=a.pcap"));
  EXPECT_TRUE(has(a, "--file-prefix=x"));
  EXPECT_TRUE(has(a, "--log-level=error"));
}

TEST(dpdk_eal, BadKeysAreReportedWithTheirPosition) {
  std::string errors;
  (void)read("[dpdk]\nmemroy = 1\nmbufs = 3\nlog_level = \"loud\"\nallow = [\"a\"]\nblock = [\"b\"]\nmtu = 20\n", &errors);
  EXPECT_NE(errors.find("t.toml:2:1: dpdk.memroy: unknown key"), std::string::npos) << errors;
  EXPECT_NE(errors.find("dpdk.mbufs"), std::string::npos) << errors;
  EXPECT_NE(errors.find("dpdk.log_level"), std::string::npos) << errors;
  EXPECT_NE(errors.find("dpdk.block: give either an allow list or a block list"), std::string::npos) << errors;
  EXPECT_NE(errors.find("dpdk.mtu: an IPv4 MTU is at least 68"), std::string::npos) << errors;
}

TEST(dpdk_eal, RxQueuesAreHandedOutInClaimOrderPerPort) {
  dp::reset_claims();
  EXPECT_EQ(dp::claim_port({"net_ring0", true, 0}), 0);
  EXPECT_EQ(dp::claim_port({"net_ring0", true, 0}), 1);
  EXPECT_EQ(dp::claim_port({"net_pcap0", true, 0}), 0);
  EXPECT_EQ(dp::claim_port({"net_ring0", false, 2}), 0);  // a sink: tx queues only
  (void)read("");                                         // a new configuration forgets the claims
  EXPECT_EQ(dp::claim_port({"net_ring0", true, 0}), 0);
}

TEST(dpdk_eal, AdapterCountersKeepAtMostTheirCapacityAndTruncateNames) {
  hypergate::adapter::AdapterCounters c;
  EXPECT_TRUE(c.empty());
  for (std::size_t i = 0; i < hypergate::adapter::AdapterCounters::kMaxAdapterCounters + 3; ++i) {
    c.add("counter_" + std::to_string(i), i);
  }
  EXPECT_EQ(c.size(), hypergate::adapter::AdapterCounters::kMaxAdapterCounters);
  EXPECT_EQ(c.begin()->name_view(), "counter_0");
  c = {};
  c.add(std::string(100, 'n'), 7);
  EXPECT_EQ(c.begin()->name_view().size(), hypergate::adapter::AdapterCounters::kMaxCounterName - 1);
  EXPECT_EQ(c.begin()->value, 7u);
}

}  // namespace
