// The `pcap` source and sink, built through the Registry from TOML as the gateway builds them: every
// payload delivered in order and finished, loops, port filter, pacing (first poll gives only what is
// due), ring backpressure until release(), config errors; the sink writes raw frames or MoldUDP64
// packets (contiguous sequences from 1, packed up to the MTU) that CaptureReader and the codec read back,
// and only the instance of the configured worker writes.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "hypergate/adapter/registry.hpp"
#include "hypergate/config/config.hpp"
#include "pcap/capture_reader.hpp"
#include "pcap/capture_writer.hpp"
#include "protocols/moldudp64.hpp"

namespace hypergate::pcap {
namespace {

using Bytes = std::vector<std::byte>;
constexpr std::uint64_t kEpoch = 1'700'000'000'000'000'000;

std::string temp_path(const std::string& name) {
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  return ::testing::TempDir() + "hg_pcapad_" + info->name() + "_" + std::to_string(::getpid()) + "_" + name;
}

Bytes bytes_of(std::string_view s) {
  Bytes b(s.size());
  if (!s.empty()) std::memcpy(b.data(), s.data(), s.size());  // an empty vector's data() may be null
  return b;
}

/// Writes `n` payloads "m<i>" (each followed by `pad` filler bytes) to UDP port 30001, 1 us apart.
void write_capture(const std::string& path, std::size_t n, std::size_t pad = 0) {
  FrameAddresses a;
  a.dst_port = 30001;
  Result<CaptureWriter> w = CaptureWriter::create(path, a);
  ASSERT_TRUE(w.ok());
  for (std::size_t i = 0; i < n; ++i) {
    const std::string p = "m" + std::to_string(i) + std::string(pad, '.');
    ASSERT_TRUE(w->write(bytes_of(p), kEpoch + i * 1000).ok());
  }
  ASSERT_TRUE(w->close().ok());
}

struct Built {
  std::unique_ptr<config::Document> doc;
  std::unique_ptr<adapter::Source> source;
  std::unique_ptr<adapter::Sink> sink;
  std::string diagnostics;
};

Built build(const std::string& toml, bool is_sink, adapter::Context ctx = {}) {
  Built b;
  Result<std::unique_ptr<config::Document>> doc = config::Document::parse(toml, "t.toml");
  EXPECT_TRUE(doc.ok());
  if (!doc.ok()) return b;
  b.doc = std::move(doc).value();
  std::vector<config::Section> secs = b.doc->instances(is_sink ? "sink" : "source");
  EXPECT_EQ(secs.size(), 1u);
  if (secs.empty()) return b;
  config::Section& s = secs[0];
  const std::string type = s.string("type", "");
  if (is_sink) {
    const adapter::SinkFactory* f = adapter::Registry::global().sink(type);
    EXPECT_NE(f, nullptr);
    if (f == nullptr) return b;
    Result<std::unique_ptr<adapter::Sink>> made = (*f)(s, ctx);
    if (made.ok()) b.sink = std::move(made).value();
  } else {
    const adapter::SourceFactory* f = adapter::Registry::global().source(type);
    EXPECT_NE(f, nullptr);
    if (f == nullptr) return b;
    Result<std::unique_ptr<adapter::Source>> made = (*f)(s, ctx);
    if (made.ok()) b.source = std::move(made).value();
  }
  s.finish();
  b.diagnostics = b.doc->diagnostics().format();
  return b;
}

std::string source_toml(const std::string& path, const std::string& extra = "") {
  return "[source.replay]\ntype = \"pcap\"\npath = \"" + path + "\"\nprogress = false\n" + extra;
}

/// Polls until finished(), releasing each burst; returns the payloads and checks the sequences.
std::vector<std::string> drain(adapter::Source& src, std::size_t max_polls = 1'000'000, std::uint64_t first_seq = 1) {
  std::vector<std::string> out;
  Burst<> b;
  for (std::size_t i = 0; i < max_polls && !src.finished(); ++i) {
    b.clear();
    const std::size_t n = src.poll(b);
    EXPECT_EQ(n, b.size());
    for (const Message& m : b) {
      EXPECT_EQ(m.sequence, first_seq + out.size());
      EXPECT_NE(m.rx_tsc, 0u);
      out.emplace_back(m.text());
    }
    if (n != 0) src.release(b);
  }
  EXPECT_TRUE(src.finished());
  return out;
}

TEST(PcapSource, RegisteredAndDeliversEveryPayloadInOrder) {
  const std::string path = temp_path("src.pcap");
  write_capture(path, 1000);
  Built b = build(source_toml(path), false);
  ASSERT_TRUE(b.source) << b.diagnostics;
  EXPECT_TRUE(b.diagnostics.empty()) << b.diagnostics;
  EXPECT_EQ(b.source->type(), "pcap");
  ASSERT_TRUE(b.source->start().ok());
  const std::vector<std::string> got = drain(*b.source);
  ASSERT_EQ(got.size(), 1000u);
  for (std::size_t i = 0; i < got.size(); ++i) EXPECT_EQ(got[i], "m" + std::to_string(i));
  const adapter::SourceStats st = b.source->stats();
  EXPECT_EQ(st.messages, 1000u);
  EXPECT_EQ(st.errors, 0u);
  EXPECT_GE(st.polls, 1000u / Burst<>::capacity());
  Burst<> after;
  EXPECT_EQ(b.source->poll(after), 0u);  // finished stays finished
  b.source->stop();
  std::remove(path.c_str());
}

TEST(PcapSource, LoopsAndPortFilter) {
  const std::string path = temp_path("loop.pcap");
  write_capture(path, 5);
  Built b = build(source_toml(path, "loop = 3\nport = 30001\nspeed = \"max\"\n"), false);
  ASSERT_TRUE(b.source) << b.diagnostics;
  ASSERT_TRUE(b.source->start().ok());
  const std::vector<std::string> got = drain(*b.source);
  ASSERT_EQ(got.size(), 15u);
  for (std::size_t i = 0; i < got.size(); ++i) EXPECT_EQ(got[i], "m" + std::to_string(i % 5));
  b.source->stop();

  Built other = build(source_toml(path, "port = 4242\nloop = 1000000\n"), false);  // nothing matches
  ASSERT_TRUE(other.source);
  ASSERT_TRUE(other.source->start().ok());
  EXPECT_TRUE(drain(*other.source, 100).empty());  // an empty pass ends the loops at once
  std::remove(path.c_str());
}

TEST(PcapSource, PacedPollReturnsOnlyWhatIsDue) {
  const std::string path = temp_path("paced.pcap");
  write_capture(path, 20);
  Built b = build(source_toml(path, "speed = \"2000pps\"\n"), false);
  ASSERT_TRUE(b.source) << b.diagnostics;
  ASSERT_TRUE(b.source->start().ok());
  Burst<> first;
  // At the first poll only packet 0 is due (packet 1 is due 500 us later).
  EXPECT_EQ(b.source->poll(first), 1u);
  EXPECT_EQ(first[0].text(), "m0");
  b.source->release(first);
  std::vector<std::string> rest;
  Burst<> burst;
  while (!b.source->finished()) {
    burst.clear();
    if (b.source->poll(burst) == 0) {
      ::usleep(200);
      continue;
    }
    for (const Message& m : burst) rest.emplace_back(m.text());
    b.source->release(burst);
  }
  ASSERT_EQ(rest.size(), 19u);
  EXPECT_EQ(rest.back(), "m19");
  std::remove(path.c_str());
}

TEST(PcapSource, RingBackpressureUntilRelease) {
  const std::string path = temp_path("big.pcap");
  write_capture(path, 400, 60'000);  // 400 x 60 KB = 24 MB: three times the ring
  Built b = build(source_toml(path), false);
  ASSERT_TRUE(b.source);
  ASSERT_TRUE(b.source->start().ok());
  std::vector<std::unique_ptr<Burst<>>> held;  // polled, not released: payloads must stay intact
  std::size_t polled = 0;
  for (int i = 0; i < 1000; ++i) {
    auto burst = std::make_unique<Burst<>>();
    const std::size_t n = b.source->poll(*burst);
    if (n == 0) break;
    polled += n;
    held.push_back(std::move(burst));
  }
  EXPECT_GT(polled, 100u);
  EXPECT_LT(polled, 400u);  // the ring filled before the file ended
  std::size_t seq = 0;
  for (const auto& burst : held) {
    for (const Message& m : *burst) {
      const std::string want = "m" + std::to_string(seq++);
      ASSERT_EQ(m.text().substr(0, want.size()), want);
      ASSERT_EQ(m.size, want.size() + 60'000);
    }
  }
  for (auto& burst : held) b.source->release(*burst);
  const std::vector<std::string> rest = drain(*b.source, 1'000'000, polled + 1);
  EXPECT_EQ(polled + rest.size(), 400u);
  EXPECT_EQ(rest.front().substr(0, std::to_string(polled).size() + 1), "m" + std::to_string(polled));
  std::remove(path.c_str());
}

TEST(PcapSource, ConfigAndStartErrors) {
  Built bad = build("[source.r]\ntype = \"pcap\"\nspeed = \"fast\"\nloop = 0\nbogus = 1\n", false);
  EXPECT_NE(bad.diagnostics.find("source.r.path"), std::string::npos) << bad.diagnostics;
  EXPECT_NE(bad.diagnostics.find("invalid speed \"fast\""), std::string::npos) << bad.diagnostics;
  EXPECT_NE(bad.diagnostics.find("source.r.loop"), std::string::npos) << bad.diagnostics;
  EXPECT_NE(bad.diagnostics.find("source.r.bogus"), std::string::npos) << bad.diagnostics;
  Built missing = build(source_toml(temp_path("nope.pcap")), false);
  ASSERT_TRUE(missing.source);
  Result<void> r = missing.source->start();
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("nope.pcap"), std::string::npos);
  Burst<> b;
  EXPECT_EQ(missing.source->poll(b), 0u);  // polling a source that did not start is harmless
}

// ---- sink --------------------------------------------------------------------------------------------

std::vector<Bytes> read_payloads(const std::string& path, std::vector<UdpDatagram>* meta = nullptr) {
  std::vector<Bytes> out;
  Result<CaptureReader> r = CaptureReader::open(path);
  EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().message);
  if (!r.ok()) return out;
  UdpDatagram d;
  while (r->next(d) == CaptureReader::Next::Datagram) {
    out.emplace_back(d.payload.begin(), d.payload.end());
    if (meta != nullptr) meta->push_back(d);
  }
  return out;
}

/// The burst views `texts`, which must outlive the send (no temporaries).
void fill(Burst<>& b, const std::vector<std::string>& texts) {
  b.clear();
  for (const std::string& t : texts) b.emplace_back().set_payload(t.data(), t.size());
}
void fill(Burst<>& b, std::vector<std::string>&& texts) = delete;

TEST(PcapSink, RawFramesReadBackExactly) {
  const std::string path = temp_path("raw.pcap");
  Built b = build("[sink.cap]\ntype = \"pcap\"\npath = \"" + path +
                      "\"\nsrc = \"10.1.2.3:5000\"\ndst = \"239.9.9.9:31000\"\n",
                  true, adapter::Context{"cap", 0, 2, 0});
  ASSERT_TRUE(b.sink) << b.diagnostics;
  EXPECT_TRUE(b.diagnostics.empty()) << b.diagnostics;
  ASSERT_TRUE(b.sink->start().ok());
  std::vector<std::string> texts;
  for (int i = 0; i < 70; ++i) texts.push_back("payload-" + std::to_string(i));
  Burst<> burst;
  for (std::size_t at = 0; at < texts.size(); at += 32) {
    const std::vector<std::string> chunk(texts.begin() + static_cast<std::ptrdiff_t>(at),
                                         texts.begin() + static_cast<std::ptrdiff_t>(std::min(at + 32, texts.size())));
    fill(burst, chunk);
    EXPECT_EQ(b.sink->send(burst), burst.size());
    b.sink->flush();
  }
  b.sink->stop();
  EXPECT_EQ(b.sink->stats().messages, 70u);
  EXPECT_EQ(b.sink->stats().errors, 0u);
  std::vector<UdpDatagram> meta;
  const std::vector<Bytes> got = read_payloads(path, &meta);
  ASSERT_EQ(got.size(), texts.size());
  for (std::size_t i = 0; i < got.size(); ++i) {
    EXPECT_EQ(got[i], bytes_of(texts[i]));
    EXPECT_EQ(meta[i].src_ip, 0x0A010203u);
    EXPECT_EQ(meta[i].src_port, 5000);
    EXPECT_EQ(meta[i].dst_ip, 0xEF090909u);
    EXPECT_EQ(meta[i].dst_port, 31000);
    EXPECT_GT(meta[i].capture_ns, kEpoch);  // stamped with the wall clock
  }
  std::remove(path.c_str());
}

TEST(PcapSink, MoldUdp64PacksUpToTheMtuWithContiguousSequences) {
  const std::string path = temp_path("mold.pcap");
  // mtu 300 -> 272 bytes of UDP payload: header 20 + 2 x (2 + 100) = 224 fits, a third block does not.
  Built b = build("[sink.cap]\ntype = \"pcap\"\npath = \"" + path +
                      "\"\nframing = \"moldudp64\"\nsession = \"SESS01\"\nmtu = 300\n",
                  true, adapter::Context{"cap", 0, 1, 0});
  ASSERT_TRUE(b.sink) << b.diagnostics;
  EXPECT_TRUE(b.diagnostics.empty()) << b.diagnostics;
  ASSERT_TRUE(b.sink->start().ok());
  std::vector<std::string> texts;
  for (int i = 0; i < 5; ++i) texts.push_back(std::string(100, static_cast<char>('a' + i)));
  Burst<> burst;
  fill(burst, texts);
  EXPECT_EQ(b.sink->send(burst), 5u);
  b.sink->flush();  // closes the half-full third packet
  const std::vector<std::string> small = {std::string(10, 'z')};
  fill(burst, small);
  EXPECT_EQ(b.sink->send(burst), 1u);
  const std::vector<std::string> large = {std::string(400, 'L')};
  fill(burst, large);  // cannot fit any packet at this MTU: dropped, counted
  EXPECT_EQ(b.sink->send(burst), 1u);
  b.sink->stop();  // flushes the last packet
  EXPECT_EQ(b.sink->stats().messages, 6u);
  EXPECT_EQ(b.sink->stats().drops, 1u);

  const std::vector<Bytes> packets = read_payloads(path);
  ASSERT_EQ(packets.size(), 4u);
  const std::vector<std::uint64_t> first_seq = {1, 3, 5, 6};
  const std::vector<std::uint16_t> counts = {2, 2, 1, 1};
  std::vector<std::string> messages;
  for (std::size_t i = 0; i < packets.size(); ++i) {
    EXPECT_LE(packets[i].size(), 272u);
    protocols::mold::PacketView view;
    ASSERT_EQ(protocols::mold::PacketView::parse(packets[i], view), protocols::mold::PacketError::Ok);
    EXPECT_EQ(view.session(), "SESS01    ");
    EXPECT_EQ(view.sequence(), first_seq[i]);
    EXPECT_EQ(view.count(), counts[i]);
    for (const protocols::mold::MessageBlock blk : view) {
      messages.emplace_back(reinterpret_cast<const char*>(blk.data.data()), blk.data.size());
    }
  }
  ASSERT_EQ(messages.size(), 6u);
  for (std::size_t i = 0; i < 5; ++i) EXPECT_EQ(messages[i], texts[i]);
  EXPECT_EQ(messages[5], std::string(10, 'z'));
  std::remove(path.c_str());
}

TEST(PcapSink, OnlyTheConfiguredWorkerWrites) {
  const std::string path = temp_path("w1.pcap");
  const std::string toml = "[sink.cap]\ntype = \"pcap\"\npath = \"" + path + "\"\nworker = 1\n";
  Built other = build(toml, true, adapter::Context{"cap", 0, 2, 0});
  ASSERT_TRUE(other.sink) << other.diagnostics;
  ASSERT_TRUE(other.sink->start().ok());
  Burst<> burst;
  const std::vector<std::string> abc = {"a", "b", "c"};
  fill(burst, abc);
  EXPECT_EQ(other.sink->send(burst), 3u);
  other.sink->stop();
  EXPECT_EQ(other.sink->stats().errors, 3u);
  EXPECT_EQ(other.sink->stats().messages, 0u);
  EXPECT_NE(::access(path.c_str(), F_OK), 0);  // the non-writing instance never created the file

  Built writer = build(toml, true, adapter::Context{"cap", 0, 2, 1});
  ASSERT_TRUE(writer.sink);
  ASSERT_TRUE(writer.sink->start().ok());
  EXPECT_EQ(writer.sink->send(burst), 3u);
  writer.sink->stop();
  EXPECT_EQ(writer.sink->stats().messages, 3u);
  EXPECT_EQ(read_payloads(path).size(), 3u);
  std::remove(path.c_str());
}

TEST(PcapSink, ConfigErrors) {
  Built bad = build(
      "[sink.cap]\ntype = \"pcap\"\ndst = \"somehost:1\"\nframing = \"json\"\nsession = \"ELEVENCHARS\"\n"
      "worker = 3\nsrc_mac = \"zz\"\nmtu = 10\n",
      true, adapter::Context{"cap", 0, 2, 0});
  for (const char* key : {"sink.cap.path", "sink.cap.dst", "sink.cap.framing", "sink.cap.session", "sink.cap.worker",
                          "sink.cap.src_mac", "sink.cap.mtu"}) {
    EXPECT_NE(bad.diagnostics.find(key), std::string::npos) << key << "\n" << bad.diagnostics;
  }
}

}  // namespace
}  // namespace hypergate::pcap
