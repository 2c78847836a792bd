// pcap adapters end to end in the real `hypergate` binary: a capture written by CaptureWriter is
// replayed by the `pcap` source through the default pipeline into a `pcap` sink; the run ends by itself
// when the capture is finished, and the sink's file holds every payload of both passes (read back by
// CaptureReader and judged by tshark: checksums good, nothing malformed). `config check` reports a bad
// speed at its file:line:col.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include "loopback.hpp"
#include "pcap/capture_reader.hpp"
#include "pcap/capture_writer.hpp"

namespace {

using hypergate::test::sh;
namespace pc = hypergate::pcap;

const std::string kBinary = HG_BINARY_DIR "/framework/gateway/hypergate";

class PcapGateway : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/hg_pcap_XXXXXX";
    const char* d = ::mkdtemp(tmpl);
    ASSERT_NE(d, nullptr);
    dir_ = d;
  }
  void TearDown() override { sh("rm -rf " + dir_); }

  std::string write(const std::string& name, const std::string& text) {
    const std::string path = dir_ + "/" + name;
    std::ofstream(path) << text;
    return path;
  }

  std::string dir_;
};

TEST_F(PcapGateway, ReplaysACaptureIntoACaptureSink) {
  const std::string in = dir_ + "/in.pcap";
  const std::string out = dir_ + "/out.pcap";
  constexpr int kPackets = 2000;
  {
    pc::FrameAddresses a;
    a.dst_port = 30001;
    auto w = pc::CaptureWriter::create(in, a);
    ASSERT_TRUE(w.ok()) << w.error().message;
    for (int i = 0; i < kPackets; ++i) {
      const std::string p = "msg-" + std::to_string(i);
      ASSERT_TRUE(w->write(std::as_bytes(std::span(p.data(), p.size())), 1'700'000'000'000'000'000ull + i).ok());
    }
    ASSERT_TRUE(w->close().ok());
  }
  const std::string config = write("replay.toml", "[gateway]\nworkers = 1\n\n[source.replay]\ntype = \"pcap\"\npath = \"" +
                                                      in + "\"\nport = 30001\nspeed = \"max\"\nloop = 2\n\n"
                                                      "[sink.capture]\ntype = \"pcap\"\npath = \"" + out +
                                                      "\"\nsrc = \"10.0.0.1:40000\"\ndst = \"10.0.0.2:31000\"\n");
  const std::string run =
      sh("timeout 60 " + kBinary + " run --config " + config + " --set admin.listen=127.0.0.1:0 2>&1; echo exit=$?");
  ASSERT_NE(run.find("exit=0"), std::string::npos) << run;
  EXPECT_NE(run.find("all sources finished"), std::string::npos) << run;

  auto r = pc::CaptureReader::open(out);
  ASSERT_TRUE(r.ok()) << r.error().message << "\n" << run;
  std::vector<std::string> got;
  pc::UdpDatagram d;
  while (r->next(d) == pc::CaptureReader::Next::Datagram) {
    got.emplace_back(reinterpret_cast<const char*>(d.payload.data()), d.payload.size());
    EXPECT_EQ(d.dst_port, 31000);
  }
  ASSERT_EQ(got.size(), 2u * kPackets) << run;
  // The default pipeline spreads messages over the valve lanes by key (here: the payload's hash), and
  // order is kept per key, not across lanes: compare the sets. Each payload arrives once per pass.
  std::vector<std::string> want;
  for (int pass = 0; pass < 2; ++pass) {
    for (int i = 0; i < kPackets; ++i) want.push_back("msg-" + std::to_string(i));
  }
  std::sort(got.begin(), got.end());
  std::sort(want.begin(), want.end());
  EXPECT_EQ(got, want);

  if (sh("command -v tshark").empty()) GTEST_SKIP() << "tshark not installed";
  const std::string verbose =
      sh("tshark -r " + out + " -V -o udp.check_checksum:TRUE -o ip.check_checksum:TRUE 2>&1 | grep -c "
             "'Checksum Status: Good'");
  EXPECT_EQ(std::atoi(verbose.c_str()), 2 * kPackets);
  EXPECT_EQ(sh("tshark -r " + out + " -V 2>&1 | grep -c -E 'Malformed|Expert Info'"), "0\n");
}

TEST_F(PcapGateway, ConfigCheckReportsBadSpeedAndMissingPath) {
  const std::string config =
      write("bad.toml", "[source.replay]\ntype = \"pcap\"\nspeed = \"warp\"\n[sink.out]\ntype = \"null\"\n");
  const std::string check = sh(kBinary + " config check " + config + " 2>&1; echo exit=$?");
  EXPECT_NE(check.find("exit=2"), std::string::npos) << check;
  EXPECT_NE(check.find(config + ":3:"), std::string::npos) << check;
  EXPECT_NE(check.find("invalid speed \"warp\""), std::string::npos) << check;
  EXPECT_NE(check.find("source.replay.path"), std::string::npos) << check;
}

}  // namespace
