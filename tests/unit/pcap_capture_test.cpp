// CaptureWriter -> CaptureReader round trips (payloads, ports, ns stamps exact), the same files judged
// by tshark (fields, checksums, no malformed/expert), pcapng and microsecond captures made by editcap,
// hand-written files (SLL link type, microsecond magic, truncated, garbage, missing, unsupported link),
// port filtering, and replay_to_udp into a loopback socket.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "pcap/capture_reader.hpp"
#include "pcap/capture_writer.hpp"
#include "pcap/udp_replay.hpp"

namespace hypergate::pcap {
namespace {

using Bytes = std::vector<std::byte>;
constexpr std::uint64_t kEpoch = 1'700'000'000'123'456'789;  // ns since 1970, with sub-microsecond digits

std::string temp_path(const std::string& name) {
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  return ::testing::TempDir() + "hg_pcap_" + info->name() + "_" + std::to_string(::getpid()) + "_" + name;
}

Bytes bytes_of(std::string_view s) {
  Bytes b(s.size());
  if (!s.empty()) std::memcpy(b.data(), s.data(), s.size());  // an empty vector's data() may be null
  return b;
}

std::string text_of(std::span<const std::byte> b) { return {reinterpret_cast<const char*>(b.data()), b.size()}; }

/// Runs a shell command, returns its stdout (stderr merged); exit status in `status`.
std::string run(const std::string& cmd, int* status = nullptr) {
  std::string out;
  std::FILE* p = ::popen((cmd + " 2>&1").c_str(), "r");
  if (p == nullptr) return out;
  char buf[4096];
  std::size_t n = 0;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  const int rc = ::pclose(p);
  if (status != nullptr) *status = rc;
  return out;
}

bool have_tool(const char* tool) { return run(std::string("command -v ") + tool).find(tool) != std::string::npos; }

FrameAddresses addresses(std::uint16_t dst_port = 30001) {
  FrameAddresses a;
  a.src_ip = 0x0A000001;  // 10.0.0.1
  a.dst_ip = 0xEF010101;  // 239.1.1.1
  a.src_port = 40000;
  a.dst_port = dst_port;
  a.dst_mac = multicast_mac(a.dst_ip);
  return a;
}

/// Payloads of varied sizes (odd and even: the checksum's padding path) and random bytes.
std::vector<Bytes> sample_payloads(std::size_t n) {
  std::mt19937 rng(42);
  std::vector<Bytes> out;
  for (std::size_t i = 0; i < n; ++i) {
    Bytes p(1 + (i * 37) % 1400);
    for (std::byte& b : p) b = static_cast<std::byte>(rng());
    out.push_back(std::move(p));
  }
  out.push_back(Bytes{});                                   // empty datagram
  out.push_back(Bytes(CaptureWriter::kMaxPayload, std::byte{0x5A}));  // largest datagram
  return out;
}

std::uint64_t stamp(std::size_t i) { return kEpoch + i * 1'000'003; }

void write_capture(const std::string& path, const std::vector<Bytes>& payloads, const FrameAddresses& a) {
  Result<CaptureWriter> w = CaptureWriter::create(path, a);
  ASSERT_TRUE(w.ok()) << w.error().message;
  for (std::size_t i = 0; i < payloads.size(); ++i) ASSERT_TRUE(w->write(payloads[i], stamp(i)).ok());
  ASSERT_TRUE(w->close().ok());
  EXPECT_EQ(w->frames(), payloads.size());
}

struct Record {
  std::uint32_t sec = 0;
  std::uint32_t frac = 0;  // us or ns, per the magic
  Bytes bytes;
  std::uint32_t original = 0;  // 0 = bytes.size()
};

/// A classic pcap written by hand (little-endian), to control magic, link type and damage.
Bytes pcap_file_bytes(std::uint32_t magic, std::uint32_t link, const std::vector<Record>& records) {
  Bytes out;
  auto put32 = [&out](std::uint32_t v) {
    for (int i = 0; i < 4; ++i) out.push_back(static_cast<std::byte>(v >> (8 * i)));
  };
  auto put16 = [&out](std::uint16_t v) {
    out.push_back(static_cast<std::byte>(v));
    out.push_back(static_cast<std::byte>(v >> 8));
  };
  put32(magic);
  put16(2);
  put16(4);
  put32(0);
  put32(0);
  put32(262144);
  put32(link);
  for (const Record& r : records) {
    put32(r.sec);
    put32(r.frac);
    put32(static_cast<std::uint32_t>(r.bytes.size()));
    put32(r.original != 0 ? r.original : static_cast<std::uint32_t>(r.bytes.size()));
    out.insert(out.end(), r.bytes.begin(), r.bytes.end());
  }
  return out;
}

void write_file(const std::string& path, const Bytes& b) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f.write(reinterpret_cast<const char*>(b.data()), static_cast<std::streamsize>(b.size()));
}

Bytes ethernet_frame(std::string_view payload, const FrameAddresses& a) {
  Bytes frame(CaptureWriter::kMaxFrame);
  const Bytes p = bytes_of(payload);
  frame.resize(CaptureWriter::build_frame(a, 1, p, frame));
  return frame;
}

std::vector<UdpDatagram> read_all(CaptureReader& r, std::vector<Bytes>* payloads = nullptr) {
  std::vector<UdpDatagram> out;
  UdpDatagram d;
  while (r.next(d) == CaptureReader::Next::Datagram) {
    if (payloads != nullptr) payloads->emplace_back(d.payload.begin(), d.payload.end());
    d.payload = {};
    out.push_back(d);
  }
  return out;
}

TEST(PcapCapture, WriterReaderRoundTripIsExact) {
  const std::string path = temp_path("rt.pcap");
  const std::vector<Bytes> payloads = sample_payloads(50);
  write_capture(path, payloads, addresses());
  Result<CaptureReader> r = CaptureReader::open(path);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->format(), CaptureReader::Format::PcapNano);
  EXPECT_EQ(r->link_type(), 1);
  std::vector<Bytes> got;
  const std::vector<UdpDatagram> ds = read_all(*r, &got);
  EXPECT_TRUE(r->error().empty()) << r->error();
  ASSERT_EQ(ds.size(), payloads.size());
  for (std::size_t i = 0; i < ds.size(); ++i) {
    EXPECT_EQ(got[i], payloads[i]) << i;
    EXPECT_EQ(ds[i].capture_ns, stamp(i)) << i;
    EXPECT_EQ(ds[i].src_ip, 0x0A000001u);
    EXPECT_EQ(ds[i].dst_ip, 0xEF010101u);
    EXPECT_EQ(ds[i].src_port, 40000);
    EXPECT_EQ(ds[i].dst_port, 30001);
  }
  EXPECT_EQ(r->counts().frames, payloads.size());
  EXPECT_EQ(r->counts().datagrams, payloads.size());
  EXPECT_EQ(r->counts().skipped_total(), 0u);
  EXPECT_DOUBLE_EQ(r->progress(), 1.0);
  // rewind() reads the same datagrams again; counts add up.
  ASSERT_TRUE(r->rewind().ok());
  EXPECT_EQ(read_all(*r).size(), payloads.size());
  EXPECT_EQ(r->counts().datagrams, 2 * payloads.size());
  std::remove(path.c_str());
}

TEST(PcapCapture, WriterRejectsOversizedPayloadAndWritesAfterClose) {
  const std::string path = temp_path("big.pcap");
  Result<CaptureWriter> w = CaptureWriter::create(path, addresses());
  ASSERT_TRUE(w.ok());
  const Bytes big(CaptureWriter::kMaxPayload + 1);
  Result<void> r = w->write(big, kEpoch);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, Status::ValueTooLarge);
  EXPECT_EQ(w->frames(), 0u);
  ASSERT_TRUE(w->close().ok());
  EXPECT_EQ(w->write(bytes_of("x"), kEpoch).error().code, Status::Closed);
  EXPECT_FALSE(CaptureWriter::create("/nonexistent-dir/x.pcap", addresses()).ok());
  std::remove(path.c_str());
}

TEST(PcapCapture, TsharkDecodesFieldsAndValidatesChecksums) {
  if (!have_tool("tshark")) GTEST_SKIP() << "tshark not installed";
  const std::string path = temp_path("ts.pcap");
  const std::vector<Bytes> payloads = sample_payloads(20);
  write_capture(path, payloads, addresses());
  int status = 0;
  const std::string fields =
      run("tshark -r " + path + " -T fields -e frame.time_epoch -e udp.dstport -e udp.length", &status);
  ASSERT_EQ(status, 0) << fields;
  std::vector<std::string> lines;
  for (std::size_t pos = 0; pos < fields.size();) {
    const std::size_t nl = fields.find('\n', pos);
    std::string line = fields.substr(pos, nl - pos);
    pos = nl == std::string::npos ? fields.size() : nl + 1;
    if (line.rfind("Running as user", 0) == 0) continue;  // tshark's notice when run as root
    lines.push_back(std::move(line));
  }
  ASSERT_EQ(lines.size(), payloads.size()) << fields;
  for (std::size_t i = 0; i < lines.size(); ++i) {
    const std::uint64_t ns = stamp(i);
    char want[96];
    std::snprintf(want, sizeof want, "%llu.%09llu\t30001\t%zu", static_cast<unsigned long long>(ns / 1'000'000'000),
                  static_cast<unsigned long long>(ns % 1'000'000'000), payloads[i].size() + 8);
    EXPECT_EQ(lines[i], want) << i;
  }
  const std::string verbose =
      run("tshark -r " + path + " -V -o udp.check_checksum:TRUE -o ip.check_checksum:TRUE", &status);
  ASSERT_EQ(status, 0) << verbose.substr(0, 2000);
  EXPECT_EQ(verbose.find("Malformed"), std::string::npos);
  EXPECT_EQ(verbose.find("Expert Info"), std::string::npos);
  EXPECT_EQ(verbose.find("Bad"), std::string::npos);
  // Both checksums were verified, frame by frame.
  std::size_t good = 0;
  for (std::size_t pos = verbose.find("[Header checksum status: Good]"); pos != std::string::npos;
       pos = verbose.find("[Header checksum status: Good]", pos + 1)) {
    ++good;
  }
  EXPECT_EQ(good, payloads.size());
  good = 0;
  for (std::size_t pos = verbose.find("[Checksum Status: Good]"); pos != std::string::npos;
       pos = verbose.find("[Checksum Status: Good]", pos + 1)) {
    ++good;
  }
  EXPECT_EQ(good, payloads.size());
  std::remove(path.c_str());
}

TEST(PcapCapture, PcapngAndMicrosecondFilesFromEditcap) {
  if (!have_tool("editcap")) GTEST_SKIP() << "editcap not installed";
  const std::string path = temp_path("src.pcap");
  const std::string ng = temp_path("x.pcapng");
  const std::string us = temp_path("us.pcap");
  const std::vector<Bytes> payloads = sample_payloads(10);
  write_capture(path, payloads, addresses());
  int status = 0;
  ASSERT_EQ((run("editcap -F pcapng " + path + " " + ng, &status), status), 0);
  ASSERT_EQ((run("editcap -F pcap " + path + " " + us, &status), status), 0);

  Result<CaptureReader> rng = CaptureReader::open(ng);
  ASSERT_TRUE(rng.ok()) << rng.error().message;
  EXPECT_EQ(rng->format(), CaptureReader::Format::Pcapng);
  std::vector<Bytes> got;
  std::vector<UdpDatagram> ds = read_all(*rng, &got);
  ASSERT_EQ(ds.size(), payloads.size());
  for (std::size_t i = 0; i < ds.size(); ++i) {
    EXPECT_EQ(got[i], payloads[i]);
    EXPECT_EQ(ds[i].capture_ns, stamp(i)) << i;  // editcap keeps ns resolution in pcapng
  }

  Result<CaptureReader> rus = CaptureReader::open(us);
  ASSERT_TRUE(rus.ok()) << rus.error().message;
  EXPECT_EQ(rus->format(), CaptureReader::Format::PcapMicro);
  got.clear();
  ds = read_all(*rus, &got);
  ASSERT_EQ(ds.size(), payloads.size());
  for (std::size_t i = 0; i < ds.size(); ++i) {
    EXPECT_EQ(got[i], payloads[i]);
    EXPECT_EQ(ds[i].capture_ns / 1000, stamp(i) / 1000) << i;  // microseconds survive, in ns units
    EXPECT_EQ(ds[i].capture_ns % 1000, 0u) << i;
  }
  for (const std::string& p : {path, ng, us}) std::remove(p.c_str());
}

TEST(PcapCapture, MicrosecondMagicWrittenByHandGivesNanoseconds) {
  const std::string path = temp_path("hand_us.pcap");
  const FrameAddresses a = addresses();
  write_file(path, pcap_file_bytes(0xA1B2C3D4, 1,
                                   {{1'700'000'000, 123'456, ethernet_frame("one", a), 0},
                                    {1'700'000'001, 999'999, ethernet_frame("two", a), 0}}));
  Result<CaptureReader> r = CaptureReader::open(path);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->format(), CaptureReader::Format::PcapMicro);
  std::vector<Bytes> got;
  const std::vector<UdpDatagram> ds = read_all(*r, &got);
  ASSERT_EQ(ds.size(), 2u);
  EXPECT_EQ(ds[0].capture_ns, 1'700'000'000'123'456'000u);
  EXPECT_EQ(ds[1].capture_ns, 1'700'000'001'999'999'000u);
  EXPECT_EQ(text_of(got[1]), "two");
  std::remove(path.c_str());
}

TEST(PcapCapture, LinuxCookedFile) {
  const std::string path = temp_path("sll.pcap");
  const Bytes eth = ethernet_frame("any-device", addresses());
  Bytes sll = {std::byte{0}, std::byte{4}, std::byte{0}, std::byte{1}, std::byte{0}, std::byte{6}};
  sll.resize(14, std::byte{0x22});
  sll.push_back(std::byte{0x08});
  sll.push_back(std::byte{0x00});
  sll.insert(sll.end(), eth.begin() + 14, eth.end());
  write_file(path, pcap_file_bytes(0xA1B23C4D, 113, {{1'700'000'000, 5, sll, 0}}));
  Result<CaptureReader> r = CaptureReader::open(path);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->link_type(), 113);
  std::vector<Bytes> got;
  const std::vector<UdpDatagram> ds = read_all(*r, &got);
  ASSERT_EQ(ds.size(), 1u);
  EXPECT_EQ(text_of(got[0]), "any-device");
  EXPECT_EQ(ds[0].capture_ns, 1'700'000'000'000'000'005u);
  std::remove(path.c_str());
}

TEST(PcapCapture, FilterByPortAndCountSkips) {
  const std::string path = temp_path("mixed.pcap");
  const Bytes a = ethernet_frame("to-a", addresses(30001));
  const Bytes b = ethernet_frame("to-b", addresses(30002));
  Bytes tcp = ethernet_frame("tcp", addresses(30001));
  tcp[14 + 9] = std::byte{6};
  Bytes arp = ethernet_frame("arp", addresses(30001));
  arp[13] = std::byte{0x06};
  Bytes frag = ethernet_frame("frag", addresses(30001));
  frag[14 + 6] = std::byte{0x20};
  const Bytes cut(a.begin(), a.end() - 2);  // snaplen cut: original length is the full frame
  write_file(path, pcap_file_bytes(0xA1B23C4D, 1,
                                   {{1, 0, a, 0},
                                    {2, 0, b, 0},
                                    {3, 0, tcp, 0},
                                    {4, 0, arp, 0},
                                    {5, 0, frag, 0},
                                    {6, 0, cut, static_cast<std::uint32_t>(a.size())},
                                    {7, 0, b, 0},
                                    {8, 0, a, 0}}));
  Result<CaptureReader> all = CaptureReader::open(path, 0);
  ASSERT_TRUE(all.ok());
  std::vector<Bytes> got;
  EXPECT_EQ(read_all(*all, &got).size(), 4u);
  ASSERT_EQ(got.size(), 4u);
  EXPECT_EQ(text_of(got[0]), "to-a");
  EXPECT_EQ(text_of(got[1]), "to-b");
  const ReaderCounts& c = all->counts();
  EXPECT_EQ(c.frames, 8u);
  EXPECT_EQ(c.skipped_for(FrameVerdict::NotUdp), 1u);
  EXPECT_EQ(c.skipped_for(FrameVerdict::NotIpv4), 1u);
  EXPECT_EQ(c.skipped_for(FrameVerdict::Fragment), 1u);
  EXPECT_EQ(c.skipped_for(FrameVerdict::Truncated), 1u);
  EXPECT_EQ(c.skipped_for(FrameVerdict::PortFiltered), 0u);

  Result<CaptureReader> only_b = CaptureReader::open(path, 30002);
  ASSERT_TRUE(only_b.ok());
  got.clear();
  const std::vector<UdpDatagram> ds = read_all(*only_b, &got);
  ASSERT_EQ(ds.size(), 2u);
  for (std::size_t i = 0; i < ds.size(); ++i) {
    EXPECT_EQ(ds[i].dst_port, 30002);
    EXPECT_EQ(text_of(got[i]), "to-b");
  }
  EXPECT_EQ(only_b->counts().skipped_for(FrameVerdict::PortFiltered), 2u);
  std::remove(path.c_str());
}

TEST(PcapCapture, ClearErrorsForBadFiles) {
  Result<CaptureReader> missing = CaptureReader::open(temp_path("does-not-exist.pcap"));
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().code, Status::NotFound);
  EXPECT_NE(missing.error().message.find("No such file"), std::string::npos) << missing.error().message;

  const std::string garbage = temp_path("garbage.pcap");
  write_file(garbage, bytes_of("this is certainly not a capture file, just text"));
  Result<CaptureReader> g = CaptureReader::open(garbage);
  ASSERT_FALSE(g.ok());
  EXPECT_EQ(g.error().code, Status::Malformed);
  EXPECT_NE(g.error().message.find("not a pcap or pcapng capture"), std::string::npos) << g.error().message;

  const std::string empty = temp_path("empty.pcap");
  write_file(empty, Bytes{});
  Result<CaptureReader> e = CaptureReader::open(empty);
  ASSERT_FALSE(e.ok());
  EXPECT_NE(e.error().message.find("not a pcap or pcapng capture"), std::string::npos) << e.error().message;

  const std::string header_only = temp_path("hdr.pcap");  // the magic, then nothing
  Bytes header = pcap_file_bytes(0xA1B2C3D4, 1, {});
  header.resize(10);
  write_file(header_only, header);
  Result<CaptureReader> h = CaptureReader::open(header_only);
  ASSERT_FALSE(h.ok());
  EXPECT_NE(h.error().message.find("cannot read capture"), std::string::npos) << h.error().message;

  const std::string null_link = temp_path("null.pcap");  // DLT_NULL (BSD loopback): not supported
  write_file(null_link, pcap_file_bytes(0xA1B2C3D4, 0, {{1, 0, bytes_of("abcd"), 0}}));
  Result<CaptureReader> n = CaptureReader::open(null_link);
  ASSERT_FALSE(n.ok());
  EXPECT_EQ(n.error().code, Status::Unsupported);
  EXPECT_NE(n.error().message.find("unsupported link type NULL"), std::string::npos) << n.error().message;

  EXPECT_FALSE(CaptureReader::open(::testing::TempDir()).ok());  // a directory
  for (const std::string& p : {garbage, empty, header_only, null_link}) std::remove(p.c_str());
}

TEST(PcapCapture, TruncatedFileReturnsWholeRecordsThenAnError) {
  const std::string path = temp_path("cut.pcap");
  const FrameAddresses a = addresses();
  Bytes file = pcap_file_bytes(0xA1B23C4D, 1, {{1, 0, ethernet_frame("first", a), 0},
                                               {2, 0, ethernet_frame("second", a), 0},
                                               {3, 0, ethernet_frame("third", a), 0}});
  file.resize(file.size() - 5);  // the last record loses its tail
  write_file(path, file);
  Result<CaptureReader> r = CaptureReader::open(path);
  ASSERT_TRUE(r.ok());
  std::vector<Bytes> got;
  EXPECT_EQ(read_all(*r, &got).size(), 2u);
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(text_of(got[1]), "second");
  EXPECT_NE(r->error().find("truncated"), std::string::npos) << r->error();
  UdpDatagram d;
  EXPECT_EQ(r->next(d), CaptureReader::Next::End);  // stays ended
  std::remove(path.c_str());
}

// ---- replay_to_udp ----------------------------------------------------------------------------------

/// A UDP socket on 127.0.0.1:<ephemeral> that collects datagrams on its own thread until `expect`.
class LoopbackReceiver {
 public:
  explicit LoopbackReceiver(std::size_t expect) : expect_(expect) {
    fd_ = ::socket(AF_INET, SOCK_DGRAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    socklen_t len = sizeof a;
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    // Room for every datagram of a test even if this thread is not scheduled for a while (loopback
    // UDP drops when the receive buffer is full). SO_RCVBUFFORCE needs CAP_NET_ADMIN; without it the
    // kernel caps SO_RCVBUF at rmem_max and the senders below are paced to leave time to drain.
    const int want = 8 << 20;
    if (::setsockopt(fd_, SOL_SOCKET, SO_RCVBUFFORCE, &want, sizeof want) != 0) {
      ::setsockopt(fd_, SOL_SOCKET, SO_RCVBUF, &want, sizeof want);
    }
    timeval tv{5, 0};  // a lost datagram ends the wait instead of hanging the test
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    thread_ = std::thread([this] {
      std::vector<char> buf(70000);
      while (got_.size() < expect_) {
        const ssize_t n = ::recv(fd_, buf.data(), buf.size(), 0);
        if (n < 0) break;
        got_.emplace_back(buf.data(), static_cast<std::size_t>(n));
      }
    });
  }
  ~LoopbackReceiver() {
    if (thread_.joinable()) thread_.join();
    ::close(fd_);
  }
  std::vector<std::string> wait() {
    thread_.join();
    return got_;
  }
  [[nodiscard]] std::uint16_t port() const { return port_; }

 private:
  std::size_t expect_;
  int fd_ = -1;
  std::uint16_t port_ = 0;
  std::thread thread_;
  std::vector<std::string> got_;
};

std::vector<Bytes> numbered_payloads(std::size_t n) {
  std::vector<Bytes> out;
  for (std::size_t i = 0; i < n; ++i) out.push_back(bytes_of("packet-" + std::to_string(i)));
  return out;
}

/// Writes `n` numbered payloads, replays them `loops` times at `speed` to a loopback receiver and
/// checks that every payload of every pass arrived, in order. Returns the replay's result.
ReplayResult replay_numbered(std::size_t n, Speed speed, std::uint64_t loops) {
  const std::string path = temp_path("replay.pcap");
  const std::vector<Bytes> payloads = numbered_payloads(n);
  write_capture(path, payloads, addresses());
  Result<CaptureReader> r = CaptureReader::open(path);
  EXPECT_TRUE(r.ok());
  if (!r.ok()) return {};
  LoopbackReceiver rx(n * loops);
  UdpDestination dst;
  dst.port = rx.port();
  ReplaySchedule schedule(speed, monotonic_now_ns());
  ReplayOptions opt;
  opt.loops = loops;
  Result<ReplayResult> res = replay_to_udp(*r, dst, schedule, opt);
  const std::vector<std::string> got = rx.wait();
  std::remove(path.c_str());
  EXPECT_TRUE(res.ok()) << res.error().message;
  if (!res.ok()) return {};
  EXPECT_EQ(res->packets, n * loops);
  EXPECT_EQ(res->passes, loops);
  EXPECT_EQ(res->send_errors, 0u);
  EXPECT_FALSE(res->stopped);
  EXPECT_TRUE(res->read_error.empty());
  EXPECT_EQ(got.size(), n * loops);
  for (std::size_t i = 0; i < got.size(); ++i) EXPECT_EQ(got[i], text_of(payloads[i % n])) << i;
  return *res;
}

TEST(PcapReplay, SendsEveryPayloadInOrderAtMaxSpeed) {
  const ReplayResult res = replay_numbered(100, Speed::max(), 1);
  EXPECT_EQ(res.bytes, 10u * 8 + 90u * 9);  // "packet-" + 1 or 2 digits
}

TEST(PcapReplay, LoopsSendEveryPassInOrder) {
  (void)replay_numbered(300, Speed::rate(10'000), 2);  // paced so that the receiver keeps up
}

TEST(PcapReplay, FixedRateTakesAtLeastItsSchedule) {
  const std::uint64_t t0 = monotonic_now_ns();
  const ReplayResult res = replay_numbered(200, Speed::rate(1000), 1);
  // Lower bound only (no upper bound on a shared machine): packet 199 is due 199 ms after the start.
  EXPECT_GE(monotonic_now_ns() - t0, 199'000'000u);
  EXPECT_GE(res.elapsed_ns, 190'000'000u);  // first send to last: 199 ms less the first send's own delay
  EXPECT_GT(res.packets_per_second, 0.0);
}

TEST(PcapReplay, StopFlagAndBadDestinations) {
  const std::string path = temp_path("stop.pcap");
  write_capture(path, numbered_payloads(10), addresses());
  Result<CaptureReader> r = CaptureReader::open(path);
  ASSERT_TRUE(r.ok());
  UdpDestination dst;
  dst.port = 9;  // discard; nothing is sent anyway
  std::atomic<bool> stop{true};
  ReplayOptions opt;
  opt.stop = &stop;
  ReplaySchedule schedule(Speed::realtime(), monotonic_now_ns());
  Result<ReplayResult> res = replay_to_udp(*r, dst, schedule, opt);
  ASSERT_TRUE(res.ok());
  EXPECT_TRUE(res->stopped);
  EXPECT_EQ(res->packets, 0u);

  UdpDestination bad;
  bad.host = "not-an-ip";
  bad.port = 1;
  EXPECT_EQ(replay_to_udp(*r, bad, schedule).error().code, Status::InvalidArgument);
  bad.host = "127.0.0.1";
  bad.port = 0;
  EXPECT_FALSE(replay_to_udp(*r, bad, schedule).ok());
  std::remove(path.c_str());
}

TEST(PcapAddresses, ParseIpv4AndMac) {
  EXPECT_EQ(parse_ipv4("239.1.2.3").value(), 0xEF010203u);
  EXPECT_EQ(parse_ipv4("0.0.0.0").value(), 0u);
  for (const char* bad : {"", "1.2.3", "1.2.3.4.5", "256.1.1.1", "1..2.3", "a.b.c.d", "1.2.3.4 ", "1234.1.1.1"}) {
    EXPECT_FALSE(parse_ipv4(bad).ok()) << bad;
  }
  const MacAddress m = parse_mac("02:aB:00:ff:10:01").value();
  EXPECT_EQ(m, (MacAddress{0x02, 0xAB, 0x00, 0xFF, 0x10, 0x01}));
  EXPECT_FALSE(parse_mac("02:ab:00:ff:10").ok());
  EXPECT_FALSE(parse_mac("02-ab-00-ff-10-01").ok());
  EXPECT_FALSE(parse_mac("0g:ab:00:ff:10:01").ok());
  EXPECT_EQ(multicast_mac(0xEF810203), (MacAddress{0x01, 0x00, 0x5E, 0x01, 0x02, 0x03}));
}

}  // namespace
}  // namespace hypergate::pcap
