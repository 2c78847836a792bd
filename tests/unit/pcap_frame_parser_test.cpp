// Frame parser: hand-built Ethernet (plain, 802.1Q, QinQ), Linux cooked v1/v2 and raw IPv4 frames, and
// every skip reason. Frames come from CaptureWriter::build_frame (a checked-elsewhere builder) and are
// then re-wrapped or damaged byte by byte.
#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include "pcap/capture_writer.hpp"
#include "pcap/frame_parser.hpp"

namespace hypergate::pcap {
namespace {

using Bytes = std::vector<std::byte>;

Bytes bytes_of(std::string_view s) {
  Bytes b(s.size());
  if (!s.empty()) std::memcpy(b.data(), s.data(), s.size());  // an empty vector's data() may be null
  return b;
}

FrameAddresses test_addresses() {
  FrameAddresses a;
  a.src_ip = 0x0A000001;  // 10.0.0.1
  a.dst_ip = 0xEF010101;  // 239.1.1.1
  a.src_port = 40000;
  a.dst_port = 30001;
  return a;
}

/// A complete Ethernet + IPv4 + UDP frame carrying `payload`.
Bytes ethernet_frame(std::string_view payload, const FrameAddresses& a = test_addresses()) {
  Bytes frame(CaptureWriter::kMaxFrame);
  const Bytes p = bytes_of(payload);
  frame.resize(CaptureWriter::build_frame(a, 7, p, frame));
  return frame;
}

/// The IPv4 packet inside an Ethernet frame (without the 14-byte Ethernet header).
Bytes ip_packet(const Bytes& eth) { return Bytes(eth.begin() + 14, eth.end()); }

/// Inserts a VLAN tag (TPID, VLAN id 100) before the ethertype.
Bytes with_vlan(const Bytes& eth, std::uint16_t tpid) {
  Bytes out(eth.begin(), eth.begin() + 12);
  out.push_back(static_cast<std::byte>(tpid >> 8));
  out.push_back(static_cast<std::byte>(tpid));
  out.push_back(std::byte{0x00});
  out.push_back(std::byte{100});
  out.insert(out.end(), eth.begin() + 12, eth.end());
  return out;
}

std::string payload_text(const UdpDatagram& d) {
  return {reinterpret_cast<const char*>(d.payload.data()), d.payload.size()};
}

FrameVerdict parse(LinkType link, const Bytes& f, UdpDatagram& d) { return parse_frame(link, f, f.size(), d); }

TEST(PcapFrameParser, EthernetIpv4Udp) {
  const Bytes f = ethernet_frame("hello");
  UdpDatagram d;
  ASSERT_EQ(parse(LinkType::Ethernet, f, d), FrameVerdict::Accepted);
  EXPECT_EQ(d.src_ip, 0x0A000001u);
  EXPECT_EQ(d.dst_ip, 0xEF010101u);
  EXPECT_EQ(d.src_port, 40000);
  EXPECT_EQ(d.dst_port, 30001);
  EXPECT_EQ(payload_text(d), "hello");
  EXPECT_EQ(d.payload.data(), f.data() + 42);  // a view into the frame, not a copy
}

TEST(PcapFrameParser, EmptyPayloadAndEthernetPadding) {
  Bytes f = ethernet_frame("");
  UdpDatagram d;
  ASSERT_EQ(parse(LinkType::Ethernet, f, d), FrameVerdict::Accepted);
  EXPECT_TRUE(d.payload.empty());
  f.resize(60, std::byte{0xEE});  // minimum Ethernet frame: trailer padding is not payload
  ASSERT_EQ(parse(LinkType::Ethernet, f, d), FrameVerdict::Accepted);
  EXPECT_TRUE(d.payload.empty());
}

TEST(PcapFrameParser, VlanTags) {
  const Bytes plain = ethernet_frame("tagged");
  UdpDatagram d;
  const Bytes q = with_vlan(plain, 0x8100);
  ASSERT_EQ(parse(LinkType::Ethernet, q, d), FrameVerdict::Accepted);
  EXPECT_EQ(payload_text(d), "tagged");
  EXPECT_EQ(d.dst_port, 30001);
  const Bytes qinq = with_vlan(with_vlan(plain, 0x8100), 0x88A8);
  ASSERT_EQ(parse(LinkType::Ethernet, qinq, d), FrameVerdict::Accepted);
  EXPECT_EQ(payload_text(d), "tagged");
  Bytes deep = plain;
  for (std::size_t i = 0; i <= kMaxVlanTags; ++i) deep = with_vlan(deep, 0x8100);
  EXPECT_EQ(parse(LinkType::Ethernet, deep, d), FrameVerdict::BadHeader);
  // A tag cut by the end of the frame.
  Bytes cut(q.begin(), q.begin() + 15);
  EXPECT_EQ(parse(LinkType::Ethernet, cut, d), FrameVerdict::Truncated);
}

TEST(PcapFrameParser, LinuxCookedV1) {
  const Bytes ip = ip_packet(ethernet_frame("cooked"));
  Bytes f = {std::byte{0}, std::byte{0},  // packet type: to us
             std::byte{0}, std::byte{1},  // ARPHRD_ETHER
             std::byte{0}, std::byte{6}};  // address length
  for (int i = 0; i < 8; ++i) f.push_back(std::byte{0x11});  // address (6 used + 2 padding)
  f.push_back(std::byte{0x08});
  f.push_back(std::byte{0x00});  // protocol IPv4
  ASSERT_EQ(f.size(), 16u);
  f.insert(f.end(), ip.begin(), ip.end());
  UdpDatagram d;
  ASSERT_EQ(parse(LinkType::LinuxSll, f, d), FrameVerdict::Accepted);
  EXPECT_EQ(payload_text(d), "cooked");
  EXPECT_EQ(d.src_port, 40000);
  f[14] = std::byte{0x86};
  f[15] = std::byte{0xDD};  // IPv6
  EXPECT_EQ(parse(LinkType::LinuxSll, f, d), FrameVerdict::NotIpv4);
  const Bytes shorter(f.begin(), f.begin() + 10);
  EXPECT_EQ(parse(LinkType::LinuxSll, shorter, d), FrameVerdict::Truncated);
}

TEST(PcapFrameParser, LinuxCookedV2) {
  const Bytes ip = ip_packet(ethernet_frame("cooked2"));
  Bytes f = {std::byte{0x08}, std::byte{0x00}};  // protocol IPv4
  f.resize(20, std::byte{0});                     // reserved, ifindex, hatype, pkttype, halen, address
  f.insert(f.end(), ip.begin(), ip.end());
  UdpDatagram d;
  ASSERT_EQ(parse(LinkType::LinuxSll2, f, d), FrameVerdict::Accepted);
  EXPECT_EQ(payload_text(d), "cooked2");
}

TEST(PcapFrameParser, RawIpv4) {
  const Bytes ip = ip_packet(ethernet_frame("raw"));
  UdpDatagram d;
  ASSERT_EQ(parse(LinkType::Raw, ip, d), FrameVerdict::Accepted);
  EXPECT_EQ(payload_text(d), "raw");
  ASSERT_EQ(parse(LinkType::RawIpv4, ip, d), FrameVerdict::Accepted);
  EXPECT_EQ(d.dst_ip, 0xEF010101u);
  Bytes v6 = ip;
  v6[0] = std::byte{0x60};
  EXPECT_EQ(parse(LinkType::Raw, v6, d), FrameVerdict::NotIpv4);
}

TEST(PcapFrameParser, SkipReasons) {
  const Bytes good = ethernet_frame("payload!");
  UdpDatagram d;
  {  // ARP
    Bytes f = good;
    f[12] = std::byte{0x08};
    f[13] = std::byte{0x06};
    EXPECT_EQ(parse(LinkType::Ethernet, f, d), FrameVerdict::NotIpv4);
  }
  {  // TCP
    Bytes f = good;
    f[14 + 9] = std::byte{6};
    EXPECT_EQ(parse(LinkType::Ethernet, f, d), FrameVerdict::NotUdp);
  }
  {  // more fragments
    Bytes f = good;
    f[14 + 6] = std::byte{0x20};
    EXPECT_EQ(parse(LinkType::Ethernet, f, d), FrameVerdict::Fragment);
  }
  {  // non-zero fragment offset (DF cleared)
    Bytes f = good;
    f[14 + 6] = std::byte{0x00};
    f[14 + 7] = std::byte{0x10};
    EXPECT_EQ(parse(LinkType::Ethernet, f, d), FrameVerdict::Fragment);
  }
  {  // IHL below 5
    Bytes f = good;
    f[14] = std::byte{0x44};
    EXPECT_EQ(parse(LinkType::Ethernet, f, d), FrameVerdict::BadHeader);
  }
  {  // IPv4 total length past the captured bytes
    Bytes f = good;
    f[14 + 2] = std::byte{0x01};
    EXPECT_EQ(parse(LinkType::Ethernet, f, d), FrameVerdict::BadHeader);
  }
  {  // UDP length larger than the IP payload
    Bytes f = good;
    f[14 + 20 + 4] = std::byte{0x00};
    f[14 + 20 + 5] = std::byte{200};
    EXPECT_EQ(parse(LinkType::Ethernet, f, d), FrameVerdict::BadHeader);
  }
  {  // UDP length below its header
    Bytes f = good;
    f[14 + 20 + 4] = std::byte{0x00};
    f[14 + 20 + 5] = std::byte{7};
    EXPECT_EQ(parse(LinkType::Ethernet, f, d), FrameVerdict::BadHeader);
  }
  {  // snaplen cut: captured < original
    const Bytes f(good.begin(), good.end() - 3);
    EXPECT_EQ(parse_frame(LinkType::Ethernet, f, good.size(), d), FrameVerdict::Truncated);
  }
  // Every prefix of a good frame, presented as complete, is rejected without reading past it (ASan).
  for (std::size_t n = 0; n < good.size(); ++n) {
    const Bytes f(good.begin(), good.begin() + static_cast<std::ptrdiff_t>(n));
    EXPECT_NE(parse(LinkType::Ethernet, f, d), FrameVerdict::Accepted) << n;
  }
}

TEST(PcapFrameParser, SupportedLinkTypes) {
  EXPECT_TRUE(supported_link_type(1));
  EXPECT_TRUE(supported_link_type(12));
  EXPECT_TRUE(supported_link_type(113));
  EXPECT_TRUE(supported_link_type(228));
  EXPECT_TRUE(supported_link_type(276));
  EXPECT_FALSE(supported_link_type(0));    // BSD loopback
  EXPECT_FALSE(supported_link_type(105));  // 802.11
}

}  // namespace
}  // namespace hypergate::pcap
