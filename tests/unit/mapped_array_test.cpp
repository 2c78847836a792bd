// kv::MappedArray: zero-filled, fixed-size, movable without moving its elements, errors for sizes it
// cannot represent, and huge pages when asked for on a system that has transparent huge pages.
#include <gtest/gtest.h>

#include <cstdint>
#include <fstream>
#include <string>

#include "hypergate/kv/mapped_array.hpp"

namespace {

using hypergate::kv::MappedArray;

struct Rec {
  std::uint64_t a = 0;
  std::uint32_t b = 0;
  std::uint16_t c = 0;
};

TEST(MappedArray, StartsZeroedAndKeepsItsElementsWhenMoved) {
  auto made = MappedArray<Rec>::create(100'000, false);
  ASSERT_TRUE(made.ok()) << made.error().message;
  MappedArray<Rec> a = std::move(made.value());
  ASSERT_EQ(a.size(), 100'000u);
  for (const Rec& r : a) ASSERT_TRUE(r.a == 0 && r.b == 0 && r.c == 0);
  a[99'999].a = 42;
  Rec* where = a.data();
  MappedArray<Rec> b = std::move(a);
  EXPECT_EQ(b.data(), where);
  EXPECT_EQ(b[99'999].a, 42u);
  EXPECT_EQ(a.data(), nullptr);
  EXPECT_EQ(a.size(), 0u);
  EXPECT_EQ(b.end() - b.begin(), 100'000);
}

TEST(MappedArray, RefusesZeroAndOverflowingSizes) {
  EXPECT_FALSE(MappedArray<Rec>::create(0, true).ok());
  const auto huge = MappedArray<Rec>::create(static_cast<std::size_t>(-1) / 8, true);
  ASSERT_FALSE(huge.ok());
  EXPECT_NE(huge.error().message.find("overflows"), std::string::npos) << huge.error().message;
  EXPECT_THROW((void)MappedArray<Rec>::create_or_throw(0, false), std::bad_alloc);
}

TEST(MappedArray, UsesHugePagesWhereTransparentHugePagesAreOffered) {
  std::ifstream f("/sys/kernel/mm/transparent_hugepage/enabled");
  std::string mode;
  std::getline(f, mode);
  if (mode.find("[never]") != std::string::npos || mode.empty()) GTEST_SKIP() << "THP off: " << mode;
  auto a = MappedArray<std::uint32_t>::create(std::size_t{8} << 20, true);  // 32 MiB
  ASSERT_TRUE(a.ok()) << a.error().message;
  EXPECT_TRUE(a.value().huge_pages());
  EXPECT_EQ(reinterpret_cast<std::uintptr_t>(a.value().data()) % (std::uintptr_t{2} << 20), 0u);
  auto normal = MappedArray<std::uint32_t>::create(1024, false);
  ASSERT_TRUE(normal.ok());
  EXPECT_FALSE(normal.value().huge_pages());
}

}  // namespace
