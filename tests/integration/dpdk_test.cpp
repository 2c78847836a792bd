// The DPDK adapter through real EAL and real PMDs, without a NIC or hugepages (--no-huge, vdevs). Every
// scenario runs in its own process (DPDK allows one EAL per process): the `hypergate` binary, or
// dpdk_helper for what the binary cannot show on its own.
//  a. `hypergate replay --via dpdk` (net_pcap rx = the capture, dpdk source, itch pipeline) writes the same
//     --book-json as the in-process replay, gaps included.
//  b. the dpdk sink's MoldUDP64 frames, written by a net_pcap tx vdev, decode in tshark without malformed
//     packets or expert warnings (IPv4 and UDP checksums checked) and carry exactly the input datagrams.
//  c. net_ring loopback: dpdk sink -> ring -> dpdk source, every message back once, in order, intact.
//  d. net_af_packet on a veth whose peer lives in a namespace this test creates: multicast MoldUDP64 sent
//     from a plain UDP socket inside the namespace arrives through the dpdk source.
//  f. the port's link state, rte_eth_stats and xstats reach /stats ("details") and /metrics.
//  e. every error path: no ports, no hugepages, EAL init failure with DPDK's message, unknown PMD, port
//     index out of range, unknown port name, EAL already initialised, bad [dpdk] keys — message and exit code.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "gateway_process.hpp"
#include "loopback.hpp"
#include "pcap/capture_reader.hpp"
#include "protocols/moldudp64.hpp"

namespace {

using hypergate::test::free_port;
using hypergate::test::GatewayProcess;
using hypergate::test::run_shell;
using hypergate::test::TempDir;
namespace mold = hypergate::protocols::mold;

const std::string kBin = HG_BINARY_DIR "/framework/gateway/hypergate";
const std::string kHelper = HG_DPDK_HELPER;

struct Ran {
  int code = -1;
  std::string out;
};
Ran run(const std::string& cmd) {
  Ran r;
  r.code = run_shell("timeout 60 " + cmd + " 2>&1", &r.out);
  return r;
}

std::string slurp(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

void write_file(const std::string& path, const std::string& text) { std::ofstream(path, std::ios::binary) << text; }

std::vector<std::string> datagrams(const std::string& capture, std::uint16_t port) {
  std::vector<std::string> out;
  auto reader = hypergate::pcap::CaptureReader::open(capture, port);
  if (!reader) return out;
  hypergate::pcap::UdpDatagram d;
  while (reader->next(d) == hypergate::pcap::CaptureReader::Next::Datagram) {
    out.emplace_back(reinterpret_cast<const char*>(d.payload.data()), d.payload.size());
  }
  return out;
}

// A gateway configuration with a [dpdk] section for vdevs only (plain memory, no PCI scan).
std::string config_with(const std::string& dpdk_extra, const std::string& rest) {
  return "[gateway]\nworkers = 1\n[admin]\nenabled = false\n[dpdk]\nno_huge = true\nno_pci = true\n" + dpdk_extra +
         "\n" + rest;
}

const std::string kDpdkSource = "[source.in]\ntype = \"dpdk\"\nport = \"0\"\npipeline = \"passthrough\"\n"
                                "[sink.d]\ntype = \"null\"\n";

// (a) ------------------------------------------------------------------------------------------------
TEST(dpdk, ReplayViaDpdkGivesTheInProcessBook) {
  TempDir dir("hg_dpdk_a");
  const std::string cap = dir.path() + "/feed.pcap";
  Ran gen = run(kBin + " gen itch --out " + cap + " --messages 30000 --symbol-count 12 --seed 11 --drop 200-230");
  ASSERT_EQ(gen.code, 0) << gen.out;
  Ran in = run(kBin + " replay " + cap + " -q --book-json " + dir.path() + "/inprocess.json");
  ASSERT_EQ(in.code, 0) << in.out;
  Ran dp = run(kBin + " replay " + cap + " --via dpdk -q --book-json " + dir.path() + "/dpdk.json");
  ASSERT_EQ(dp.code, 0) << dp.out;
  EXPECT_NE(dp.out.find("source replay (dpdk)"), std::string::npos) << dp.out;
  EXPECT_NE(dp.out.find("net_pcap"), std::string::npos) << dp.out;
  const std::string a = slurp(dir.path() + "/inprocess.json");
  const std::string b = slurp(dir.path() + "/dpdk.json");
  ASSERT_FALSE(a.empty());
  EXPECT_NE(a.find("\"gaps\": [[2"), std::string::npos) << a;  // the dropped range is part of both books
  EXPECT_EQ(a, b);
}

// (b) ------------------------------------------------------------------------------------------------
TEST(dpdk, SinkFramesDecodeInTsharkAndCarryThePayloads) {
  TempDir dir("hg_dpdk_b");
  const std::string cap = dir.path() + "/feed.pcap";
  const std::string out = dir.path() + "/out.pcap";
  ASSERT_EQ(run(kBin + " gen itch --out " + cap + " --messages 3000 --symbol-count 5 --seed 3").code, 0);
  const std::string conf = dir.path() + "/sink.toml";
  write_file(conf, config_with("vdevs = [\"net_pcap_out,tx_pcap=" + out + "\"]\n",
                               "[valves]\nslot_bytes = 2048\n"  // whole MoldUDP64 datagrams as messages
                               "[source.in]\ntype = \"pcap\"\npath = \"" + cap +
                                   "\"\nprogress = false\npipeline = \"passthrough\"\n"
                                   "[source.in.pipeline_options]\nkey = \"source\"\n"  // one lane: feed order
                                   "[sink.out]\ntype = \"dpdk\"\nport = \"net_pcap_out\"\nframing = \"moldudp64\"\n"
                                   "session = \"TSHARK\"\nmtu = 2000\ndestination = \"239.9.9.9:30555\"\n"
                                   "source = \"10.1.1.1:40001\"\n"));
  Ran r = run(kBin + " run --config " + conf + " -q");
  ASSERT_EQ(r.code, 0) << r.out;

  // tshark is the judge of the framing and of both checksums.
  Ran ts = run("tshark -r " + out + " -d udp.port==30555,moldudp64 -o ip.check_checksum:TRUE -o udp.check_checksum:TRUE "
               "-z expert,note -q");
  ASSERT_EQ(ts.code, 0) << ts.out;
  EXPECT_EQ(ts.out.find("Malformed"), std::string::npos) << ts.out;
  EXPECT_EQ(ts.out.find("Warn"), std::string::npos) << ts.out;
  EXPECT_EQ(ts.out.find("Error"), std::string::npos) << ts.out;
  Ran fields = run("tshark -r " + out + " -d udp.port==30555,moldudp64 -T fields -e moldudp64.session -e moldudp64.count");
  ASSERT_EQ(fields.code, 0) << fields.out;
  EXPECT_NE(fields.out.find("TSHARK"), std::string::npos) << fields.out;

  // Payloads: every input datagram is one MoldUDP64 message, sequences 1..N, then an end of session.
  std::vector<std::string> in = datagrams(cap, 0);
  std::vector<std::string> got;
  std::uint64_t next = 1;
  bool end_of_session = false;
  for (const std::string& p : datagrams(out, 30555)) {
    mold::PacketView v;
    ASSERT_EQ(mold::PacketView::parse(std::as_bytes(std::span(p.data(), p.size())), v), mold::PacketError::Ok);
    EXPECT_EQ(v.session_name().trimmed(), "TSHARK");
    EXPECT_EQ(v.sequence(), next);
    if (v.is_end_of_session()) end_of_session = true;
    for (const auto& b : v.messages()) got.emplace_back(reinterpret_cast<const char*>(b.data.data()), b.data.size());
    next = v.next_sequence();
  }
  EXPECT_TRUE(end_of_session);
  ASSERT_FALSE(in.empty());
  EXPECT_EQ(got.size(), in.size());
  EXPECT_TRUE(in == got);  // same bytes, same order
}

TEST(dpdk, SinkRawFramingSendsEachMessageAsOneValidDatagram) {
  TempDir dir("hg_dpdk_b_raw");
  const std::string cap = dir.path() + "/feed.pcap";
  const std::string out = dir.path() + "/raw.pcap";
  ASSERT_EQ(run(kBin + " gen itch --out " + cap + " --messages 2000 --symbol-count 4 --seed 9").code, 0);
  const std::string conf = dir.path() + "/raw.toml";
  write_file(conf, config_with("vdevs = [\"net_pcap_raw,tx_pcap=" + out + "\"]\n",
                               "[valves]\nslot_bytes = 2048\n[source.in]\ntype = \"pcap\"\npath = \"" + cap +
                                   "\"\nprogress = false\npipeline = \"passthrough\"\n"
                                   "[source.in.pipeline_options]\nkey = \"source\"\n"
                                   "[sink.out]\ntype = \"dpdk\"\nport = \"net_pcap_raw\"\nmtu = 2000\n"
                                   "destination = \"10.9.9.9:30556\"\n"));
  Ran r = run(kBin + " run --config " + conf + " -q");
  ASSERT_EQ(r.code, 0) << r.out;
  Ran ts = run("tshark -r " + out + " -o ip.check_checksum:TRUE -o udp.check_checksum:TRUE -z expert,note -q");
  ASSERT_EQ(ts.code, 0) << ts.out;
  EXPECT_EQ(ts.out.find("Warn"), std::string::npos) << ts.out;
  EXPECT_EQ(ts.out.find("Error"), std::string::npos) << ts.out;
  const std::vector<std::string> in = datagrams(cap, 0);
  ASSERT_FALSE(in.empty());
  EXPECT_TRUE(datagrams(out, 30556) == in);  // one datagram per message, same bytes, same order
}

// (c) ------------------------------------------------------------------------------------------------
TEST(dpdk, NetRingLoopbackReturnsEveryMoldMessage) {
  Ran r = run(kHelper + " loopback 5000");
  EXPECT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("received 5000 messages"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find(", 0 bad"), std::string::npos) << r.out;
}

// (d) ------------------------------------------------------------------------------------------------
class Namespace {
 public:
  explicit Namespace(std::string name) : name_(std::move(name)) {}
  ~Namespace() {
    std::string ignored;
    (void)run_shell("ip netns del " + name_ + " 2>/dev/null", &ignored);  // takes the veth pair with it
  }
  [[nodiscard]] const std::string& name() const { return name_; }

 private:
  std::string name_;
};

TEST(dpdk, AfPacketOnVethReceivesMulticastFromANamespace) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root (ip netns, veth)";
  const std::string id = std::to_string(getpid() % 100000);
  Namespace ns("hgdpdk" + id);
  const std::string outer = "hgda" + id, inner = "hgdb" + id;
  Ran setup = run("sh -c 'ip netns add " + ns.name() + " && ip link add " + outer + " type veth peer name " + inner +
                  " && ip link set " + inner + " netns " + ns.name() + " && ip link set " + outer +
                  " up && ip -n " + ns.name() + " addr add 10.203.0.2/24 dev " + inner + " && ip -n " + ns.name() +
                  " link set " + inner + " up && ip -n " + ns.name() + " link set lo up && ip -n " + ns.name() +
                  " route add 224.0.0.0/4 dev " + inner + "'");
  ASSERT_EQ(setup.code, 0) << setup.out;

  TempDir dir("hg_dpdk_d");
  const std::string sender = dir.path() + "/send.py";
  // 40 MoldUDP64 packets of 5 messages "hg-<seq>", sequences 1..200, to 239.203.0.9:30999.
  write_file(sender,
             "import socket, struct, time\n"
             "s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
             "s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton('10.203.0.2'))\n"
             "seq = 1\n"
             "for p in range(40):\n"
             "    body = b''\n"
             "    for k in range(5):\n"
             "        m = ('hg-%d' % (seq + k)).encode()\n"
             "        body += struct.pack('>H', len(m)) + m\n"
             "    s.sendto(b'AFPACKET  ' + struct.pack('>QH', seq, 5) + body, ('239.203.0.9', 30999))\n"
             "    seq += 5\n"
             "    time.sleep(0.002)\n");
  const std::string log = dir.path() + "/rx.log";
  Ran r = run("sh -c '" + kHelper + " receive net_af_packet0,iface=" + outer + " 239.203.0.9:30999 200 8000 > " + log +
              " 2>&1 & pid=$!; for i in $(seq 200); do grep -q ready " + log +
              " && break; sleep 0.05; done; ip netns exec " + ns.name() + " python3 " + sender +
              "; wait $pid; rc=$?; cat " + log + "; exit $rc'");
  EXPECT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("received 200 messages in 40 packets, 0 bad"), std::string::npos) << r.out;
}

// (f) ------------------------------------------------------------------------------------------------
TEST(dpdk, PortFiguresInStatsAndMetrics) {
  TempDir dir("hg_dpdk_f");
  const std::uint16_t admin = free_port();
  const std::string conf = dir.path() + "/stats.toml";
  // net_null receives an endless stream of (non-IP) frames: the port counts them, the source skips them.
  write_file(conf, "[gateway]\nworkers = 1\n[admin]\nlisten = \"127.0.0.1:" + std::to_string(admin) +
                       "\"\n[dpdk]\nno_huge = true\nno_pci = true\nvdevs = [\"net_null0\"]\n"
                       "[source.in]\ntype = \"dpdk\"\nport = \"net_null0\"\npipeline = \"passthrough\"\n"
                       "[sink.d]\ntype = \"null\"\n");
  GatewayProcess gw({"run", "--config", conf, "-q"});
  ASSERT_TRUE(gw.wait_for("running")) << gw.output();
  std::string stats, metrics;
  for (int i = 0; i < 50; ++i) {  // the worker publishes port figures every 100 ms
    stats.clear();
    (void)run_shell("curl -s http://127.0.0.1:" + std::to_string(admin) + "/stats", &stats);
    if (stats.find("\"ipackets\":0") == std::string::npos && stats.find("\"ipackets\":") != std::string::npos) break;
    usleep(100'000);
  }
  (void)run_shell("curl -s http://127.0.0.1:" + std::to_string(admin) + "/metrics", &metrics);
  EXPECT_EQ(gw.terminate(), 0) << gw.output();
  EXPECT_NE(stats.find("\"details\":{\"link_up\":1,\"link_speed_mbps\":"), std::string::npos) << stats;
  EXPECT_NE(stats.find("\"ipackets\":"), std::string::npos) << stats;
  EXPECT_EQ(stats.find("\"ipackets\":0,"), std::string::npos) << stats;
  EXPECT_NE(metrics.find("hypergate_source_detail{source=\"in\",counter=\"link_up\"} 1"), std::string::npos) << metrics;
  EXPECT_NE(metrics.find("hypergate_source_detail{source=\"in\",counter=\"ipackets\"}"), std::string::npos) << metrics;
}

// (e) ------------------------------------------------------------------------------------------------
struct ErrorCase {
  std::string dpdk;     // extra [dpdk] keys
  std::string port;     // the source's port
  std::string expect;   // in the output
};

Ran run_config(const std::string& text) {
  TempDir dir("hg_dpdk_e");
  const std::string conf = dir.path() + "/e.toml";
  write_file(conf, text);
  return run(kBin + " run --config " + conf + " -q");
}

TEST(dpdk, NoPortsFound) {
  Ran r = run_config(config_with("", kDpdkSource));
  EXPECT_EQ(r.code, 1) << r.out;
  EXPECT_NE(r.out.find("no Ethernet ports after EAL init"), std::string::npos) << r.out;
}

TEST(dpdk, HugepagesMissingSuggestsNoHuge) {
  if (slurp("/proc/meminfo").find("HugePages_Total:       0") == std::string::npos) {
    GTEST_SKIP() << "this machine has hugepages";
  }
  Ran r = run_config("[gateway]\nworkers = 1\n[admin]\nenabled = false\n[dpdk]\nvdevs = [\"net_null0\"]\n" + kDpdkSource);
  EXPECT_EQ(r.code, 1) << r.out;
  EXPECT_NE(r.out.find("no hugepages reserved"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("no_huge = true"), std::string::npos) << r.out;
}

TEST(dpdk, EalInitFailureCarriesDpdkMessage) {
  Ran r = run_config(config_with("eal_args = [\"--no-such-eal-option\"]\nvdevs = [\"net_null0\"]\n", kDpdkSource));
  EXPECT_EQ(r.code, 1) << r.out;
  EXPECT_NE(r.out.find("rte_eal_init failed: Invalid argument"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("--no-such-eal-option"), std::string::npos) << r.out;  // EAL's own complaint and our argv
}

TEST(dpdk, PmdNotAvailable) {
  Ran r = run_config(config_with("vdevs = [\"net_nosuchpmd0\"]\n", kDpdkSource));
  EXPECT_EQ(r.code, 1) << r.out;
  EXPECT_NE(r.out.find("Unable to parse device 'net_nosuchpmd0'"), std::string::npos) << r.out;  // DPDK's message
  EXPECT_NE(r.out.find("a vdev's driver is not available"), std::string::npos) << r.out;
}

TEST(dpdk, PortIndexOutOfRange) {
  std::string src = kDpdkSource;
  src.replace(src.find("port = \"0\""), 10, "port = \"5\"");
  Ran r = run_config(config_with("vdevs = [\"net_null0\"]\n", src));
  EXPECT_EQ(r.code, 1) << r.out;
  EXPECT_NE(r.out.find("port index 5 out of range (1 port(s): 0 net_null0)"), std::string::npos) << r.out;
}

TEST(dpdk, UnknownPortName) {
  std::string src = kDpdkSource;
  src.replace(src.find("port = \"0\""), 10, "port = \"net_ring9\"");
  Ran r = run_config(config_with("vdevs = [\"net_null0\"]\n", src));
  EXPECT_EQ(r.code, 1) << r.out;
  EXPECT_NE(r.out.find("no port named 'net_ring9' (ports: 0 net_null0"), std::string::npos) << r.out;
}

TEST(dpdk, EalAlreadyInitialised) {
  Ran r = run(kHelper + " eal-twice");
  EXPECT_EQ(r.code, 1) << r.out;
  EXPECT_NE(r.out.find("EAL already initialised in this process"), std::string::npos) << r.out;
}

TEST(dpdk, BadDpdkKeysAreConfigErrors) {
  TempDir dir("hg_dpdk_cfg");
  const std::string conf = dir.path() + "/bad.toml";
  write_file(conf, config_with("memroy = 64\nmbufs = \"many\"\n", kDpdkSource));
  Ran r = run(kBin + " config check " + conf);
  EXPECT_EQ(r.code, 2) << r.out;
  EXPECT_NE(r.out.find(conf + ":8:1: dpdk.memroy: unknown key"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find(conf + ":9:9: dpdk.mbufs: expected an integer"), std::string::npos) << r.out;
  // A good file is checked without starting DPDK: no EAL output, no port opened.
  const std::string good = dir.path() + "/good.toml";
  write_file(good, config_with("vdevs = [\"net_ring0\"]\n", kDpdkSource));
  Ran ok = run(kBin + " config check " + good);
  EXPECT_EQ(ok.code, 0) << ok.out;
  EXPECT_NE(ok.out.find("config ok: 1 source, 1 sink"), std::string::npos) << ok.out;
  EXPECT_EQ(ok.out.find("EAL"), std::string::npos) << ok.out;
  EXPECT_EQ(ok.out.find("dpdk: port"), std::string::npos) << ok.out;
}

}  // namespace
