// MoldUDP64 framing: builder -> parse -> iterate round trips, heartbeat / end-of-session packets, the
// re-request codec, the byte budget of the builder, and strict validation: every prefix and every
// count/length disagreement of a packet is a typed error. Datagrams are exact-size heap copies, so
// an over-read would trip ASan.
#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

#include "protocols/moldudp64.hpp"

namespace {

using namespace hypergate::protocols;
using namespace hypergate::protocols::mold;

Bytes text(const std::string& s) { return {reinterpret_cast<const std::byte*>(s.data()), s.size()}; }
std::string str(Bytes b) { return {reinterpret_cast<const char*>(b.data()), b.size()}; }

std::vector<std::byte> build(const std::string& session, std::uint64_t seq, const std::vector<std::string>& msgs) {
  std::vector<std::byte> buf(2048);
  PacketBuilder b(MutableBytes{buf});
  b.start(SessionName::from(session), seq);
  for (const auto& m : msgs) EXPECT_TRUE(b.append(text(m)));
  const Bytes out = b.finish();
  return {out.begin(), out.end()};
}

TEST(MoldUdp64, BuildParseIterate) {
  const auto pkt = build("SESS01", 42, {"hello", "", "world!"});
  ASSERT_EQ(pkt.size(), kHeaderSize + 3 * kBlockHeaderSize + 5 + 0 + 6);
  // Header bytes by hand: session padded, sequence BE, count BE.
  EXPECT_EQ(str(Bytes{pkt}.first(10)), "SESS01    ");
  EXPECT_EQ(pkt[17], std::byte{42});
  EXPECT_EQ(pkt[19], std::byte{3});
  EXPECT_EQ(pkt[20], std::byte{0});
  EXPECT_EQ(pkt[21], std::byte{5});

  PacketView v;
  ASSERT_EQ(PacketView::parse(Bytes{pkt}, v), PacketError::Ok);
  EXPECT_EQ(v.session(), "SESS01    ");
  EXPECT_EQ(v.session_name().trimmed(), "SESS01");
  EXPECT_EQ(v.sequence(), 42u);
  EXPECT_EQ(v.count(), 3u);
  EXPECT_EQ(v.message_count(), 3u);
  EXPECT_EQ(v.next_sequence(), 45u);
  EXPECT_FALSE(v.is_heartbeat());
  EXPECT_FALSE(v.is_end_of_session());
  std::vector<std::pair<std::uint64_t, std::string>> seen;
  for (const MessageBlock m : v) seen.emplace_back(m.sequence, str(m.data));
  ASSERT_EQ(seen.size(), 3u);
  EXPECT_EQ(seen[0], (std::pair<std::uint64_t, std::string>{42, "hello"}));
  EXPECT_EQ(seen[1], (std::pair<std::uint64_t, std::string>{43, ""}));
  EXPECT_EQ(seen[2], (std::pair<std::uint64_t, std::string>{44, "world!"}));
  EXPECT_EQ(v.messages().size(), 3u);
}

TEST(MoldUdp64, SubRangesClampToThePacket) {
  const auto pkt = build("S", 10, {"a", "bb", "ccc", "dddd"});
  PacketView v;
  ASSERT_EQ(PacketView::parse(Bytes{pkt}, v), PacketError::Ok);
  std::string got;
  for (const MessageBlock m : v.messages(11, 13)) got += str(m.data) + ",";
  EXPECT_EQ(got, "bb,ccc,");
  EXPECT_EQ(v.messages(0, 100).size(), 4u);
  EXPECT_EQ(v.messages(0, 100).first_sequence(), 10u);
  EXPECT_TRUE(v.messages(14, 100).empty());
  EXPECT_TRUE(v.messages(12, 12).empty());
  got.clear();
  for (const MessageBlock m : v.messages(13, 99)) got += str(m.data);
  EXPECT_EQ(got, "dddd");
}

TEST(MoldUdp64, HeartbeatAndEndOfSession) {
  std::vector<std::byte> buf(kHeaderSize);
  ASSERT_EQ(write_heartbeat(MutableBytes{buf}, SessionName::from("ABC"), 77), kHeaderSize);
  PacketView v;
  ASSERT_EQ(PacketView::parse(Bytes{buf}, v), PacketError::Ok);
  EXPECT_TRUE(v.is_heartbeat());
  EXPECT_EQ(v.message_count(), 0u);
  EXPECT_EQ(v.next_sequence(), 77u);
  EXPECT_TRUE(v.messages().empty());

  ASSERT_EQ(write_end_of_session(MutableBytes{buf}, SessionName::from("ABC"), 78), kHeaderSize);
  ASSERT_EQ(PacketView::parse(Bytes{buf}, v), PacketError::Ok);
  EXPECT_TRUE(v.is_end_of_session());
  EXPECT_EQ(v.count(), 0xFFFFu);
  EXPECT_EQ(v.message_count(), 0u);
  EXPECT_EQ(v.next_sequence(), 78u);
  int n = 0;
  for (const MessageBlock m : v) n += static_cast<int>(m.data.size()) + 1;
  EXPECT_EQ(n, 0);

  std::vector<std::byte> small(kHeaderSize - 1);
  EXPECT_EQ(write_heartbeat(MutableBytes{small}, SessionName::from("ABC"), 1), 0u);
  EXPECT_EQ(write_end_of_session(MutableBytes{small}, SessionName::from("ABC"), 1), 0u);
}

TEST(MoldUdp64, ControlPacketsWithPayloadAreRejected) {
  std::vector<std::byte> buf(kHeaderSize + 3);
  ASSERT_EQ(write_heartbeat(MutableBytes{buf}, SessionName::from("X"), 1), kHeaderSize);
  PacketView v;
  EXPECT_EQ(PacketView::parse(Bytes{buf}, v), PacketError::TrailingBytes);
  ASSERT_EQ(write_end_of_session(MutableBytes{buf}, SessionName::from("X"), 1), kHeaderSize);
  EXPECT_EQ(PacketView::parse(Bytes{buf}, v), PacketError::TrailingBytes);
}

TEST(MoldUdp64, EveryPrefixOfAPacketIsRejectedPrecisely) {
  const auto pkt = build("S", 1, {"abc", "de"});  // 20 | 00 03 a b c | 00 02 d e  = 29 bytes
  ASSERT_EQ(pkt.size(), 29u);
  for (std::size_t len = 0; len < pkt.size(); ++len) {
    const std::vector<std::byte> cut(pkt.begin(), pkt.begin() + static_cast<std::ptrdiff_t>(len));
    PacketView v;
    const PacketError e = PacketView::parse(Bytes{cut}, v);
    PacketError want;
    if (len < 20) {
      want = PacketError::TruncatedHeader;
    } else if (len < 22 || (len >= 25 && len < 27)) {
      want = PacketError::TruncatedBlockLength;
    } else {
      want = PacketError::BlockOverrun;
    }
    EXPECT_EQ(e, want) << "len " << len;
  }
}

TEST(MoldUdp64, CountDisagreeingWithTheBytesIsAnError) {
  auto pkt = build("S", 1, {"abc", "de"});
  PacketView v;
  pkt[19] = std::byte{1};  // count 1, but two blocks present
  EXPECT_EQ(PacketView::parse(Bytes{pkt}, v), PacketError::TrailingBytes);
  pkt[19] = std::byte{3};  // count 3, only two blocks
  EXPECT_EQ(PacketView::parse(Bytes{pkt}, v), PacketError::TruncatedBlockLength);
  pkt[19] = std::byte{2};
  pkt[21] = std::byte{9};  // first block claims 9 bytes: runs past the end
  EXPECT_EQ(PacketView::parse(Bytes{pkt}, v), PacketError::BlockOverrun);
  pkt[21] = std::byte{3};
  pkt.push_back(std::byte{0});  // one stray byte after the last block
  EXPECT_EQ(PacketView::parse(Bytes{pkt}, v), PacketError::TrailingBytes);
  pkt.pop_back();
  EXPECT_EQ(PacketView::parse(Bytes{pkt}, v), PacketError::Ok);
  EXPECT_EQ(to_string(PacketError::BlockOverrun), "block_overrun");
}

TEST(MoldUdp64, SequenceArithmeticMustNotWrap) {
  auto pkt = build("S", UINT64_MAX - 1, {"a", "b"});  // next sequence would be 2^64
  PacketView v;
  EXPECT_EQ(PacketView::parse(Bytes{pkt}, v), PacketError::SequenceOverflow);
  pkt = build("S", UINT64_MAX - 2, {"a", "b"});  // next sequence = 2^64 - 1: still representable
  ASSERT_EQ(PacketView::parse(Bytes{pkt}, v), PacketError::Ok);
  EXPECT_EQ(v.next_sequence(), UINT64_MAX);
  std::vector<std::byte> hb(kHeaderSize);
  ASSERT_EQ(write_heartbeat(MutableBytes{hb}, SessionName::from("S"), UINT64_MAX), kHeaderSize);
  EXPECT_EQ(PacketView::parse(Bytes{hb}, v), PacketError::Ok);
}

TEST(MoldUdp64, MaximumCountWithTheLargestLengthOverrunsSafely) {
  std::vector<std::byte> pkt(kHeaderSize + 4, std::byte{0xFF});  // count 0xFFFF = end of session...
  std::memcpy(pkt.data(), "S         ", 10);
  std::memset(pkt.data() + 10, 0, 8);  // sequence 0
  pkt[18] = std::byte{0xFF};
  pkt[19] = std::byte{0xFE};  // ...so use 0xFFFE blocks, first one 0xFFFF long
  PacketView v;
  EXPECT_EQ(PacketView::parse(Bytes{pkt}, v), PacketError::BlockOverrun);
}

TEST(MoldUdp64, BuilderRespectsTheBudget) {
  std::vector<std::byte> buf(4096, std::byte{0xAB});
  PacketBuilder b(MutableBytes{buf}, 100);
  b.start(SessionName::from("S"), 5);
  const std::string msg(10, 'x');
  int appended = 0;
  while (b.append(text(msg))) ++appended;
  EXPECT_EQ(appended, 6);  // 20 + 6 * 12 = 92; a 7th would make 104
  EXPECT_LE(b.size(), 100u);
  EXPECT_TRUE(b.fits(6));
  EXPECT_FALSE(b.fits(7));
  const MutableBytes room = b.reserve(6);
  ASSERT_EQ(room.size(), 6u);
  std::memcpy(room.data(), "123456", 6);
  EXPECT_TRUE(b.reserve(1).empty());
  EXPECT_EQ(b.count(), 7u);
  EXPECT_EQ(b.next_sequence(), 12u);
  const Bytes out = b.finish();
  EXPECT_EQ(out.size(), 100u);
  EXPECT_EQ(buf[100], std::byte{0xAB}) << "builder wrote past its budget";
  PacketView v;
  ASSERT_EQ(PacketView::parse(out, v), PacketError::Ok);
  EXPECT_EQ(v.message_count(), 7u);
  std::string last;
  for (const MessageBlock m : v) last = str(m.data);
  EXPECT_EQ(last, "123456");

  b.start(SessionName::from("S"), 12);  // reusable
  EXPECT_TRUE(b.empty());
  EXPECT_EQ(b.finish().size(), kHeaderSize);

  PacketBuilder tiny(MutableBytes{buf}, 10);  // cannot even hold a header
  tiny.start(SessionName::from("S"), 1);
  EXPECT_FALSE(tiny.append(text("a")));
  EXPECT_TRUE(tiny.finish().empty());
}

TEST(MoldUdp64, BuilderStopsBeforeTheEndOfSessionCount) {
  std::vector<std::byte> buf(kHeaderSize + 2 * 0x10000);
  PacketBuilder b(MutableBytes{buf});
  b.start(SessionName::from("S"), 1);
  std::size_t n = 0;
  while (b.append(Bytes{})) ++n;
  EXPECT_EQ(n, kMaxDataCount);
  PacketView v;
  ASSERT_EQ(PacketView::parse(b.finish(), v), PacketError::Ok);
  EXPECT_FALSE(v.is_end_of_session());
  EXPECT_EQ(v.message_count(), kMaxDataCount);
}

TEST(MoldUdp64, RequestRoundTrip) {
  const Request r{SessionName::from("SESSION123"), 0x0102030405060708ull, 0x0A0B};
  std::vector<std::byte> buf(kRequestSize);
  ASSERT_EQ(write_request(MutableBytes{buf}, r), kRequestSize);
  EXPECT_EQ(str(Bytes{buf}.first(10)), "SESSION123");
  EXPECT_EQ(buf[10], std::byte{1});
  EXPECT_EQ(buf[17], std::byte{8});
  EXPECT_EQ(buf[18], std::byte{0x0A});
  EXPECT_EQ(buf[19], std::byte{0x0B});
  Request back;
  ASSERT_EQ(parse_request(Bytes{buf}, back), PacketError::Ok);
  EXPECT_EQ(back, r);
  buf.push_back(std::byte{0});
  EXPECT_EQ(parse_request(Bytes{buf}, back), PacketError::TrailingBytes);
  buf.resize(19);
  EXPECT_EQ(parse_request(Bytes{buf}, back), PacketError::TruncatedHeader);
  std::vector<std::byte> small(5);
  EXPECT_EQ(write_request(MutableBytes{small}, r), 0u);
}

TEST(MoldUdp64, SessionNamePadsAndTruncates) {
  EXPECT_EQ(SessionName::from("AB").view(), "AB        ");
  EXPECT_EQ(SessionName::from("AB").trimmed(), "AB");
  EXPECT_EQ(SessionName::from("ABCDEFGHIJKL").view(), "ABCDEFGHIJ");
  EXPECT_EQ(SessionName::from("AB"), SessionName::from("AB  "));
  EXPECT_FALSE(SessionName::from("AB") == SessionName::from("AC"));
}

}  // namespace
