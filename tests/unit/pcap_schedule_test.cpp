// ReplaySchedule and speed parsing: exact target times for every speed mode and across loops, with a
// fake clock (the schedule is pure: times are numbers given to it). Also the progress meter's text and
// its silence when the stream is not a terminal.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <cstdio>

#include <vector>

#include "pcap/progress_meter.hpp"
#include "pcap/replay_schedule.hpp"

namespace hypergate::pcap {
namespace {

constexpr std::uint64_t kStart = 5'000'000'000;          // the fake clock's "now" at the first packet
constexpr std::uint64_t kEpoch = 1'700'000'000'000'000'000;  // capture stamps, ns since 1970

Speed must_parse(std::string_view text) {
  Result<Speed> s = parse_speed(text);
  EXPECT_TRUE(s.ok()) << text << ": " << (s.ok() ? "" : s.error().message);
  return s.ok() ? *s : Speed{};
}

TEST(PcapSpeed, ParsesEveryMode) {
  EXPECT_EQ(must_parse("max").mode, Speed::Mode::Max);
  Speed rt = must_parse("realtime");
  EXPECT_EQ(rt.mode, Speed::Mode::Scaled);
  EXPECT_EQ(rt.num, 1u);
  EXPECT_EQ(rt.den, 1u);
  Speed one = must_parse("1x");
  EXPECT_EQ(one.num, 1u);
  EXPECT_EQ(one.den, 1u);
  Speed ten = must_parse("10x");
  EXPECT_EQ(ten.num, 10u);
  EXPECT_EQ(ten.den, 1u);
  Speed half = must_parse("0.5x");
  EXPECT_EQ(half.num, 5u);
  EXPECT_EQ(half.den, 10u);
  Speed q = must_parse("2.50x");  // canonical fraction
  EXPECT_EQ(q.num, 25u);
  EXPECT_EQ(q.den, 10u);
  Speed pps = must_parse("100000pps");
  EXPECT_EQ(pps.mode, Speed::Mode::Rate);
  EXPECT_EQ(pps.pps, 100000u);
  EXPECT_EQ(must_parse(".5x").num, 5u);
}

TEST(PcapSpeed, CanonicalSpelling) {
  EXPECT_EQ(must_parse("max").to_string(), "max");
  EXPECT_EQ(must_parse("realtime").to_string(), "1x");
  EXPECT_EQ(must_parse("0.5x").to_string(), "0.5x");
  EXPECT_EQ(must_parse("2.250x").to_string(), "2.25x");
  EXPECT_EQ(must_parse("0.05x").to_string(), "0.05x");
  EXPECT_EQ(must_parse("100x").to_string(), "100x");
  EXPECT_EQ(must_parse("1000pps").to_string(), "1000pps");
}

TEST(PcapSpeed, RejectsWithClearErrors) {
  for (const char* bad : {"", "fast", "10", "x", "0x", "0.0x", "-1x", "1.x", "1e3x", "abcx", "10 x", "pps", "0pps",
                          "-5pps", "1.5pps", "10ppsx", "0.0000000001x", "99999999999x", "MAX"}) {
    Result<Speed> s = parse_speed(bad);
    ASSERT_FALSE(s.ok()) << '"' << bad << '"';
    EXPECT_EQ(s.error().code, Status::InvalidArgument);
    EXPECT_NE(s.error().message.find("invalid speed"), std::string::npos) << s.error().message;
    EXPECT_NE(s.error().message.find("expected max, realtime"), std::string::npos) << s.error().message;
  }
}

TEST(PcapSchedule, MaxIsAlwaysDue) {
  ReplaySchedule s(Speed::max(), kStart);
  EXPECT_TRUE(s.unpaced());
  EXPECT_EQ(s.next(kEpoch), 0u);
  EXPECT_EQ(s.next(kEpoch + 1'000'000'000), 0u);
  EXPECT_EQ(s.packets(), 2u);
}

TEST(PcapSchedule, RealtimeFollowsCaptureGaps) {
  ReplaySchedule s(Speed::realtime(), kStart);
  EXPECT_FALSE(s.unpaced());
  EXPECT_EQ(s.next(kEpoch), kStart);
  EXPECT_EQ(s.next(kEpoch + 1'500), kStart + 1'500);
  EXPECT_EQ(s.next(kEpoch + 2'000'000'123), kStart + 2'000'000'123);
  // A stamp going backwards is clamped: never due before the packet read before it.
  EXPECT_EQ(s.next(kEpoch + 10), kStart + 2'000'000'123);
}

TEST(PcapSchedule, ScaledIsExact) {
  ReplaySchedule fast(must_parse("10x"), kStart);
  EXPECT_EQ(fast.next(kEpoch), kStart);
  EXPECT_EQ(fast.next(kEpoch + 1'000'000'000), kStart + 100'000'000);
  EXPECT_EQ(fast.next(kEpoch + 1'000'000'007), kStart + 100'000'000);  // 100'000'000.7 rounds down
  ReplaySchedule slow(must_parse("0.5x"), kStart);
  EXPECT_EQ(slow.next(kEpoch), kStart);
  EXPECT_EQ(slow.next(kEpoch + 333), kStart + 666);
  ReplaySchedule odd(must_parse("3x"), kStart);
  (void)odd.next(kEpoch);
  EXPECT_EQ(odd.next(kEpoch + 1'000'000'000), kStart + 333'333'333);
  EXPECT_EQ(odd.next(kEpoch + 3'000'000'000), kStart + 1'000'000'000);
}

TEST(PcapSchedule, AbsoluteNotAccumulated) {
  // 1'000'000 packets 1 us apart at 3x: the last target is start + 999'999 us / 3, computed from its
  // stamp. Accumulating rounded 333 ns steps would end 333'333 ns early.
  ReplaySchedule s(must_parse("3x"), kStart);
  std::uint64_t last = 0;
  for (std::uint64_t i = 0; i < 1'000'000; ++i) last = s.next(kEpoch + i * 1'000);
  EXPECT_EQ(last, kStart + 999'999'000 / 3);
}

TEST(PcapSchedule, FixedRateUsesIndexNotStamps) {
  ReplaySchedule s(must_parse("1000pps"), kStart);
  EXPECT_EQ(s.next(kEpoch + 77), kStart);
  EXPECT_EQ(s.next(kEpoch), kStart + 1'000'000);
  EXPECT_EQ(s.next(kEpoch + 9'999'999'999), kStart + 2'000'000);
  ReplaySchedule thirds(must_parse("3pps"), kStart);
  (void)thirds.next(kEpoch);
  EXPECT_EQ(thirds.next(kEpoch), kStart + 333'333'333);
  EXPECT_EQ(thirds.next(kEpoch), kStart + 666'666'666);
  EXPECT_EQ(thirds.next(kEpoch), kStart + 1'000'000'000);
}

TEST(PcapSchedule, LoopsContinueCaptureTime) {
  // Pass: stamps 0, 100, 300 (span 300, 3 packets, mean gap 150): pass k starts at k * 450.
  ReplaySchedule s(Speed::realtime(), kStart);
  std::vector<std::uint64_t> targets;
  for (int pass = 0; pass < 3; ++pass) {
    for (const std::uint64_t t : {0ull, 100ull, 300ull}) targets.push_back(s.next(kEpoch + t));
    s.end_pass();
  }
  const std::vector<std::uint64_t> want = {0, 100, 300, 450, 550, 750, 900, 1000, 1200};
  ASSERT_EQ(targets.size(), want.size());
  for (std::size_t i = 0; i < want.size(); ++i) EXPECT_EQ(targets[i], kStart + want[i]) << i;
  EXPECT_EQ(s.passes_done(), 3u);
  EXPECT_EQ(s.packets(), 9u);
}

TEST(PcapSchedule, LoopsAtFixedRateKeepCounting) {
  ReplaySchedule s(must_parse("10pps"), kStart);
  (void)s.next(kEpoch);
  (void)s.next(kEpoch + 5);
  s.end_pass();
  EXPECT_EQ(s.next(kEpoch), kStart + 200'000'000);  // third packet overall
}

TEST(PcapSchedule, LoopsOfOnePacketAndScaled) {
  ReplaySchedule one(Speed::realtime(), kStart);
  EXPECT_EQ(one.next(kEpoch), kStart);
  one.end_pass();
  EXPECT_EQ(one.next(kEpoch), kStart);  // a one-packet pass has no span and no gap
  ReplaySchedule twice(must_parse("2x"), kStart);
  (void)twice.next(kEpoch);
  EXPECT_EQ(twice.next(kEpoch + 1'000), kStart + 500);
  twice.end_pass();
  EXPECT_EQ(twice.next(kEpoch), kStart + 1'000);  // capture time 2'000 at 2x
  EXPECT_EQ(twice.next(kEpoch + 1'000), kStart + 1'500);
}

TEST(PcapProgress, LineText) {
  EXPECT_EQ(ProgressMeter::format_line(0.5, 1234, 2'310'000, 96'400'000),
            "[###############---------------]  50.0%  1234 pkts  2.31M msgs/s  96.4 MB/s");
  EXPECT_EQ(ProgressMeter::format_line(1.7, 0, 0, 0),  // clamped
            "[##############################] 100.0%  0 pkts  0.0 msgs/s  0.0 MB/s");
  EXPECT_EQ(ProgressMeter::format_line(0.0, 5, 950, 1e3), "[------------------------------]   0.0%  5 pkts  950.0 msgs/s  0.0 MB/s");
}

TEST(PcapProgress, SilentWhenNotATerminal) {
  std::FILE* f = std::tmpfile();
  ASSERT_NE(f, nullptr);
  ProgressMeter m(f);
  EXPECT_FALSE(m.active());
  m.update(1'000'000'000, 0.5, 10, 100);
  m.finish(2'000'000'000, 1.0, 20, 200);
  EXPECT_EQ(m.redraws(), 0u);
  EXPECT_EQ(std::ftell(f), 0);  // nothing written
  std::fclose(f);
}

TEST(PcapProgress, RedrawsAtMostTenTimesPerSecondOnATerminal) {
  const int master = ::posix_openpt(O_RDWR | O_NOCTTY);
  if (master < 0 || ::grantpt(master) != 0 || ::unlockpt(master) != 0) GTEST_SKIP() << "no pseudo-terminal";
  std::FILE* tty = std::fopen(::ptsname(master), "w");
  ASSERT_NE(tty, nullptr);
  ProgressMeter m(tty);
  ASSERT_TRUE(m.active());
  const std::uint64_t t0 = 10'000'000'000;
  for (std::uint64_t i = 0; i < 1000; ++i) m.update(t0 + i * 10'000, 0.1, i, i * 100);  // 10 ms in all
  EXPECT_EQ(m.redraws(), 1u);
  EXPECT_FALSE(m.due(t0 + ProgressMeter::kMinRedrawNs - 1));
  EXPECT_TRUE(m.due(t0 + ProgressMeter::kMinRedrawNs));
  m.update(t0 + ProgressMeter::kMinRedrawNs, 0.2, 2000, 200'000);
  EXPECT_EQ(m.redraws(), 2u);
  m.finish(t0 + ProgressMeter::kMinRedrawNs + 1, 1.0, 2001, 200'100);  // always drawn
  EXPECT_EQ(m.redraws(), 3u);
  std::fclose(tty);  // everything written reaches the master side
  ::fcntl(master, F_SETFL, O_NONBLOCK);
  std::string shown;
  char buf[1024];
  for (ssize_t n = 0; (n = ::read(master, buf, sizeof buf)) > 0;) shown.append(buf, static_cast<std::size_t>(n));
  EXPECT_NE(shown.find("0 pkts"), std::string::npos) << shown;
  EXPECT_NE(shown.find("2000 pkts"), std::string::npos) << shown;
  EXPECT_NE(shown.find("100.0%  2001 pkts"), std::string::npos) << shown;
  EXPECT_EQ(shown.find("999 pkts"), std::string::npos) << shown;  // the rate-limited updates were not drawn
  ::close(master);
}

}  // namespace
}  // namespace hypergate::pcap
