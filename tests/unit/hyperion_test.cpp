// Hyperion: functional behaviour of the arena key-value store on one thread (plus Reader handles):
// put/get/overwrite/erase, tombstone reuse, every full and oversize status, typed values of many
// sizes, a randomized model test against std::unordered_map, compaction and epoch reclamation,
// file-backed warm restart and recovery from torn records, and CRC-32C.
#include <gtest/gtest.h>

#include <array>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>
#include <random>
#include <string>
#include <unordered_map>
#include <vector>

#include <unistd.h>

#include "hypergate/kv/crc32c.hpp"
#include "hypergate/kv/hyperion.hpp"

namespace hypergate::kv {
namespace {

Hyperion make_store(std::size_t arena_bytes = std::size_t{1} << 20, std::size_t slots = 1024,
                    double max_load = 0.75) {
  Hyperion::Options o;
  o.arena_bytes = arena_bytes;
  o.slots = slots;
  o.max_load = max_load;
  o.huge_pages = false;
  auto r = Hyperion::create(o);
  EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().message);
  return std::move(r).value();
}

std::optional<std::string> get_string(const Hyperion& h, std::string_view key) {
  std::array<std::byte, 4096> buf{};
  std::size_t len = 0;
  const Status st = h.get(key, buf, len);
  if (st != Status::Ok) return std::nullopt;
  return std::string(reinterpret_cast<const char*>(buf.data()), len);
}

std::string temp_path(const std::string& name) {
  return (std::filesystem::temp_directory_path() /
          ("hyperion_" + name + "_" + std::to_string(::getpid()) + ".store"))
      .string();
}

// ---- functional ------------------------------------------------------------------------------------

TEST(Hyperion, RejectsBadOptions) {
  Hyperion::Options o;
  o.huge_pages = false;
  o.slots = 0;
  EXPECT_EQ(Hyperion::create(o).error().code, Status::InvalidArgument);
  o.slots = 64;
  o.max_load = 1.0;
  EXPECT_EQ(Hyperion::create(o).error().code, Status::InvalidArgument);
  o.max_load = 0.5;
  o.arena_bytes = 100;
  EXPECT_EQ(Hyperion::create(o).error().code, Status::InvalidArgument);
}

TEST(Hyperion, RoundsSlotsToPowerOfTwoAndEnforcesLoadLimit) {
  Hyperion h = make_store(1 << 20, 100, 0.5);
  const HyperionStats s = h.stats();
  EXPECT_EQ(s.slots, 128u);
  EXPECT_EQ(s.max_occupied, 64u);
  EXPECT_FALSE(s.file_backed);
}

TEST(Hyperion, PutGetOverwriteErase) {
  Hyperion h = make_store();
  EXPECT_EQ(h.put("AAPL", "bid=100"), Status::Ok);
  EXPECT_EQ(h.put("MSFT", "bid=200"), Status::Ok);
  EXPECT_EQ(h.size(), 2u);
  EXPECT_EQ(get_string(h, "AAPL"), "bid=100");
  EXPECT_EQ(get_string(h, "MSFT"), "bid=200");
  EXPECT_FALSE(get_string(h, "GOOG"));
  EXPECT_TRUE(h.contains("AAPL"));
  EXPECT_FALSE(h.contains("GOOG"));

  EXPECT_EQ(h.put("AAPL", "bid=101"), Status::Ok);
  EXPECT_EQ(get_string(h, "AAPL"), "bid=101");
  EXPECT_EQ(h.size(), 2u);

  EXPECT_EQ(h.erase("AAPL"), Status::Ok);
  EXPECT_EQ(h.erase("AAPL"), Status::NotFound);
  EXPECT_FALSE(h.contains("AAPL"));
  EXPECT_FALSE(get_string(h, "AAPL"));
  EXPECT_EQ(h.size(), 1u);
  EXPECT_EQ(get_string(h, "MSFT"), "bid=200");

  EXPECT_EQ(h.put("AAPL", "again"), Status::Ok);
  EXPECT_EQ(get_string(h, "AAPL"), "again");
  EXPECT_EQ(h.size(), 2u);
}

TEST(Hyperion, OverwriteThatFitsIsInPlaceElseAppends) {
  Hyperion h = make_store();
  const std::string v64(64, 'a');
  ASSERT_EQ(h.put("TOB", v64), Status::Ok);
  const std::uint64_t used = h.stats().bytes_used;
  EXPECT_EQ(used, format::record_size(3, 64));
  for (char c = 'b'; c <= 'z'; ++c) ASSERT_EQ(h.put("TOB", std::string(64, c)), Status::Ok);
  EXPECT_EQ(h.stats().bytes_used, used) << "same-size overwrites consume no arena";
  EXPECT_EQ(h.stats().garbage_bytes, 0u);
  EXPECT_EQ(get_string(h, "TOB"), std::string(64, 'z'));

  ASSERT_EQ(h.put("TOB", "short"), Status::Ok);   // shrinking fits too
  EXPECT_EQ(get_string(h, "TOB"), "short");
  EXPECT_EQ(h.stats().bytes_used, used);

  const std::string big(500, 'B');
  ASSERT_EQ(h.put("TOB", big), Status::Ok);   // does not fit: new record, slot repointed
  EXPECT_EQ(get_string(h, "TOB"), big);
  EXPECT_EQ(h.stats().bytes_used, used + format::record_size(3, 500));
  EXPECT_EQ(h.stats().garbage_bytes, used);
  EXPECT_EQ(h.size(), 1u);
}

TEST(Hyperion, EmptyValueAndEmptyKey) {
  Hyperion h = make_store();
  ASSERT_EQ(h.put("empty", ""), Status::Ok);
  std::array<std::byte, 8> buf{};
  std::size_t len = 99;
  EXPECT_EQ(h.get("empty", buf, len), Status::Ok);
  EXPECT_EQ(len, 0u);
  EXPECT_EQ(h.get("empty", std::span<std::byte>(), len), Status::Ok);
  ASSERT_EQ(h.put("", "value of the empty key"), Status::Ok);
  EXPECT_EQ(get_string(h, ""), "value of the empty key");
  ASSERT_EQ(h.put("empty", "now filled"), Status::Ok);
  EXPECT_EQ(get_string(h, "empty"), "now filled");
  EXPECT_EQ(h.erase(""), Status::Ok);
  EXPECT_FALSE(h.contains(""));
}

TEST(Hyperion, OversizeKeyAndValueAreRejected) {
  Hyperion h = make_store(std::size_t{4} << 20);
  const std::string key_max(Hyperion::kMaxKeyBytes, 'k');
  const std::string key_over(Hyperion::kMaxKeyBytes + 1, 'k');
  EXPECT_EQ(h.put(key_max, "v"), Status::Ok);
  EXPECT_EQ(h.put(key_over, "v"), Status::KeyTooLarge);
  std::array<std::byte, 8> buf{};
  std::size_t len = 0;
  EXPECT_EQ(h.get(key_over, buf, len), Status::KeyTooLarge);
  EXPECT_EQ(h.erase(key_over), Status::KeyTooLarge);
  EXPECT_FALSE(h.contains(key_over));

  const std::string value_max(Hyperion::kMaxValueBytes, 'v');
  const std::string value_over(Hyperion::kMaxValueBytes + 1, 'v');
  EXPECT_EQ(h.put("big", value_over), Status::ValueTooLarge);
  EXPECT_FALSE(h.contains("big"));
  EXPECT_EQ(h.put("big", value_max), Status::Ok);
  std::vector<std::byte> out(Hyperion::kMaxValueBytes);
  EXPECT_EQ(h.get("big", out, len), Status::Ok);
  EXPECT_EQ(len, Hyperion::kMaxValueBytes);
  EXPECT_EQ(h.size(), 2u);
}

TEST(Hyperion, CallerBufferTooSmallReportsNeededLength) {
  Hyperion h = make_store();
  ASSERT_EQ(h.put("k", std::string(100, 'x')), Status::Ok);
  std::array<std::byte, 50> small{};
  std::size_t len = 0;
  EXPECT_EQ(h.get("k", small, len), Status::ValueTooLarge);
  EXPECT_EQ(len, 100u);
}

TEST(Hyperion, FullArenaKeepsOldValues) {
  Hyperion h = make_store(4096, 1024);   // 4096 - 128 header = 61 records of 64 bytes
  int stored = 0;
  Status st = Status::Ok;
  for (; stored < 1000; ++stored) {
    st = h.put("k" + std::to_string(stored), "v" + std::to_string(stored));
    if (st != Status::Ok) break;
  }
  EXPECT_EQ(st, Status::ArenaFull);
  EXPECT_EQ(stored, static_cast<int>((4096 - format::kArenaHeaderBytes) / format::kRecordAlign));
  EXPECT_EQ(h.size(), static_cast<std::size_t>(stored));
  // An overwrite that would need a new record fails and leaves the old value; one that fits works.
  EXPECT_EQ(h.put("k0", std::string(200, 'x')), Status::ArenaFull);
  EXPECT_EQ(get_string(h, "k0"), "v0");
  EXPECT_EQ(h.put("k0", "w0"), Status::Ok);
  EXPECT_EQ(get_string(h, "k0"), "w0");
  for (int i = 1; i < stored; ++i) EXPECT_EQ(get_string(h, "k" + std::to_string(i)), "v" + std::to_string(i));
  // Erasing frees no arena at runtime; compaction does.
  for (int i = 0; i < stored; i += 2) ASSERT_EQ(h.erase("k" + std::to_string(i)), Status::Ok);
  EXPECT_EQ(h.put("new", "x"), Status::ArenaFull);
  ASSERT_TRUE(h.compact().ok());
  EXPECT_EQ(h.put("new", "x"), Status::Ok);
  EXPECT_EQ(get_string(h, "new"), "x");
  for (int i = 1; i < stored; i += 2) EXPECT_EQ(get_string(h, "k" + std::to_string(i)), "v" + std::to_string(i));
}

TEST(Hyperion, FullIndexAtLoadLimit) {
  Hyperion h = make_store(1 << 20, 16, 0.75);   // 12 occupied slots at most
  for (int i = 0; i < 12; ++i) ASSERT_EQ(h.put("k" + std::to_string(i), "v"), Status::Ok) << i;
  const std::uint64_t used = h.stats().bytes_used;
  EXPECT_EQ(h.put("one-too-many", "v"), Status::IndexFull);
  EXPECT_EQ(h.stats().bytes_used, used) << "a refused insert consumes no arena";
  EXPECT_EQ(h.put("k3", "overwrite still works"), Status::Ok);
  EXPECT_EQ(get_string(h, "k3"), "overwrite still works");
  EXPECT_EQ(h.size(), 12u);
}

TEST(Hyperion, TombstonesAreRecycled) {
  // Erase/re-insert churn over a fixed key set: each re-insert reuses the first tombstone on its probe
  // path (its own old slot at the latest), so occupancy stays bounded by the key set. Without reuse,
  // every round would take a fresh empty slot and the index (limit 48) would refuse inserts by ~40.
  Hyperion h = make_store(std::size_t{8} << 20, 64, 0.75);
  for (int i = 0; i < 10; ++i) ASSERT_EQ(h.put("base" + std::to_string(i), "v"), Status::Ok);
  for (int i = 0; i < 20; ++i) ASSERT_EQ(h.put("churn" + std::to_string(i), "v"), Status::Ok);
  std::mt19937 rng(42);
  for (int round = 0; round < 5000; ++round) {
    const std::string k = "churn" + std::to_string(rng() % 20);
    if (h.contains(k)) {
      ASSERT_EQ(h.erase(k), Status::Ok);
    } else {
      ASSERT_EQ(h.put(k, "x"), Status::Ok) << round;
    }
    const HyperionStats s = h.stats();
    ASSERT_LE(s.live + s.tombstones, 30u) << round;
  }
  for (int i = 0; i < 10; ++i) EXPECT_TRUE(h.contains("base" + std::to_string(i)));
}

TEST(Hyperion, TombstonesOfEverNewKeysAreClearedByCompaction) {
  Hyperion h = make_store(std::size_t{8} << 20, 64, 0.75);
  for (int i = 0; i < 10; ++i) ASSERT_EQ(h.put("base" + std::to_string(i), "v"), Status::Ok);
  int round = 0;
  Status st = Status::Ok;
  for (; round < 1000 && st == Status::Ok; ++round) {
    const std::string k = "new" + std::to_string(round);
    st = h.put(k, "x");
    if (st == Status::Ok) {
      ASSERT_EQ(h.erase(k), Status::Ok);
    }
  }
  EXPECT_EQ(st, Status::IndexFull);
  EXPECT_TRUE(h.needs_compaction());
  EXPECT_EQ(h.size(), 10u);
  ASSERT_TRUE(h.compact().ok());
  EXPECT_FALSE(h.needs_compaction());
  EXPECT_EQ(h.stats().tombstones, 0u);
  EXPECT_EQ(h.put("new-after-compaction", "x"), Status::Ok);
  for (int i = 0; i < 10; ++i) EXPECT_TRUE(h.contains("base" + std::to_string(i)));
}

TEST(Hyperion, TypedGetChecksTheSize) {
  Hyperion h = make_store();
  const std::uint32_t small = 7;
  ASSERT_EQ(h.put("n", small), Status::Ok);
  std::uint64_t wide = 0;
  EXPECT_EQ(h.get("n", wide), Status::InvalidArgument);
  std::uint16_t narrow = 0;
  EXPECT_EQ(h.get("n", narrow), Status::ValueTooLarge);
  std::uint32_t exact = 0;
  EXPECT_EQ(h.get("n", exact), Status::Ok);
  EXPECT_EQ(exact, 7u);
  EXPECT_EQ(h.get("missing", exact), Status::NotFound);
}

TEST(Hyperion, ForEachVisitsEveryLiveKey) {
  Hyperion h = make_store();
  std::unordered_map<std::string, std::string> expect;
  for (int i = 0; i < 100; ++i) {
    const std::string k = "key" + std::to_string(i);
    const std::string v(static_cast<std::size_t>(i), static_cast<char>('a' + i % 26));
    ASSERT_EQ(h.put(k, v), Status::Ok);
    expect[k] = v;
  }
  for (int i = 0; i < 100; i += 3) {
    ASSERT_EQ(h.erase("key" + std::to_string(i)), Status::Ok);
    expect.erase("key" + std::to_string(i));
  }
  std::unordered_map<std::string, std::string> seen;
  h.for_each([&](std::string_view k, std::span<const std::byte> v) {
    seen.emplace(std::string(k), std::string(reinterpret_cast<const char*>(v.data()), v.size()));
  });
  EXPECT_EQ(seen, expect);
  const HyperionStats s = h.stats();
  std::uint64_t histogram_total = 0;
  for (std::uint64_t n : s.probe_histogram) histogram_total += n;
  EXPECT_EQ(histogram_total, s.live);
  EXPECT_EQ(s.live, expect.size());
}

// ---- typed tests over value sizes ------------------------------------------------------------------

template <class T>
class HyperionValueSize : public ::testing::Test {};
template <std::size_t N>
using Bytes = std::array<char, N>;
using ValueSizes = ::testing::Types<Bytes<1>, Bytes<7>, Bytes<8>, Bytes<9>, Bytes<15>, Bytes<16>, Bytes<40>,
                                    Bytes<63>, Bytes<64>, Bytes<65>, Bytes<200>, Bytes<4096>>;
TYPED_TEST_SUITE(HyperionValueSize, ValueSizes);

TYPED_TEST(HyperionValueSize, RoundTripsOverwritesAndReadsThroughReaders) {
  Hyperion h = make_store(std::size_t{4} << 20, 256);
  auto reader = h.reader();
  ASSERT_TRUE(reader.ok());
  for (int k = 0; k < 20; ++k) {
    TypeParam v{};
    for (std::size_t i = 0; i < v.size(); ++i) v[i] = static_cast<char>('A' + (i + static_cast<std::size_t>(k)) % 50);
    ASSERT_EQ(h.put("sym" + std::to_string(k), v), Status::Ok);
  }
  const std::uint64_t used = h.stats().bytes_used;
  for (int round = 0; round < 3; ++round) {
    for (int k = 0; k < 20; ++k) {
      TypeParam v{};
      v.fill(static_cast<char>('a' + (k + round) % 26));
      ASSERT_EQ(h.put("sym" + std::to_string(k), v), Status::Ok);
    }
  }
  EXPECT_EQ(h.stats().bytes_used, used) << "same-size overwrites are in place";
  for (int k = 0; k < 20; ++k) {
    TypeParam expect{};
    expect.fill(static_cast<char>('a' + (k + 2) % 26));
    TypeParam got{};
    ASSERT_EQ(h.get("sym" + std::to_string(k), got), Status::Ok);
    EXPECT_EQ(got, expect);
    TypeParam via_reader{};
    ASSERT_EQ(reader->get("sym" + std::to_string(k), via_reader), Status::Ok);
    EXPECT_EQ(via_reader, expect);
    std::vector<std::byte> buf(sizeof(TypeParam) + 3);
    std::size_t len = 0;
    ASSERT_EQ(reader->get("sym" + std::to_string(k), std::span<std::byte>(buf), len), Status::Ok);
    ASSERT_EQ(len, sizeof(TypeParam));
    EXPECT_EQ(std::memcmp(buf.data(), expect.data(), len), 0);
  }
}

// ---- randomized model test ---------------------------------------------------------------------------

TEST(Hyperion, MatchesUnorderedMapOverAMillionRandomOperations) {
  Hyperion h = make_store(std::size_t{1} << 20, 4096, 0.75);
  auto reader = h.reader();
  ASSERT_TRUE(reader.ok());
  std::unordered_map<std::string, std::string> model;
  std::mt19937_64 rng(0xC0FFEE);
  constexpr int kKeys = 2500;
  std::vector<std::string> keys;
  for (int i = 0; i < kKeys; ++i) keys.push_back("K" + std::to_string(i * 7919));
  std::array<std::byte, 256> buf{};
  int compactions = 0;
  for (int op = 0; op < 1'000'000; ++op) {
    const std::string& key = keys[rng() % kKeys];
    const unsigned kind = static_cast<unsigned>(rng() % 100);
    if (kind < 45) {
      std::string value(rng() % 130, '\0');
      for (char& c : value) c = static_cast<char>('0' + rng() % 64);
      Status st = h.put(key, value);
      if (st == Status::ArenaFull) {   // the store's answer to garbage: compact, then retry once
        ASSERT_TRUE(h.compact().ok());
        ++compactions;
        st = h.put(key, value);
      }
      ASSERT_EQ(st, Status::Ok) << "op " << op;
      model[key] = value;
    } else if (kind < 60) {
      const Status st = h.erase(key);
      ASSERT_EQ(st, model.erase(key) == 1 ? Status::Ok : Status::NotFound) << "op " << op;
    } else {
      std::size_t len = 0;
      const Status st = (kind < 80) ? h.get(key, buf, len) : reader->get(key, buf, len);
      const auto it = model.find(key);
      if (it == model.end()) {
        ASSERT_EQ(st, Status::NotFound) << "op " << op;
      } else {
        ASSERT_EQ(st, Status::Ok) << "op " << op;
        ASSERT_EQ(std::string_view(reinterpret_cast<const char*>(buf.data()), len), it->second) << "op " << op;
      }
      ASSERT_EQ(h.contains(key), it != model.end());
    }
    if (op % 100'000 == 0) {
      ASSERT_EQ(h.size(), model.size());
    }
  }
  EXPECT_GT(compactions, 0) << "the workload is meant to exercise compaction";
  EXPECT_EQ(h.size(), model.size());
  std::size_t visited = 0;
  h.for_each([&](std::string_view k, std::span<const std::byte> v) {
    ++visited;
    const auto it = model.find(std::string(k));
    ASSERT_NE(it, model.end());
    EXPECT_EQ(std::string_view(reinterpret_cast<const char*>(v.data()), v.size()), it->second);
  });
  EXPECT_EQ(visited, model.size());
  EXPECT_EQ(h.reclaim(), 0u) << "no reader is pinned, so every retired table is freed";
}

// ---- readers, compaction and epochs ------------------------------------------------------------------

TEST(Hyperion, ReaderRegistrationsAreBounded) {
  Hyperion h = make_store();
  std::vector<Hyperion::Reader> readers;
  for (unsigned i = 0; i < Hyperion::kMaxReaders; ++i) {
    auto r = h.reader();
    ASSERT_TRUE(r.ok()) << i;
    readers.push_back(std::move(r).value());
  }
  EXPECT_EQ(h.stats().readers, Hyperion::kMaxReaders);
  auto refused = h.reader();
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code, Status::Unsupported);
  readers.pop_back();   // a released registration is reusable
  EXPECT_TRUE(h.reader().ok());
}

TEST(Hyperion, CompactionWaitsForPinnedReaders) {
  Hyperion h = make_store();
  for (int i = 0; i < 50; ++i) ASSERT_EQ(h.put("k" + std::to_string(i), "old" + std::to_string(i)), Status::Ok);
  for (int i = 0; i < 50; i += 2) ASSERT_EQ(h.erase("k" + std::to_string(i)), Status::Ok);
  auto reader = h.reader();
  ASSERT_TRUE(reader.ok());
  std::array<std::byte, 64> buf{};
  std::size_t len = 0;
  {
    const Hyperion::ReadGuard pinned = reader->pin();
    ASSERT_TRUE(h.compact().ok());
    EXPECT_EQ(h.stats().retired_tables, 1u) << "the old table is still pinned";
    EXPECT_EQ(h.stats().tombstones, 0u) << "the fresh table has no tombstones";
    EXPECT_EQ(h.reclaim(), 1u);
    ASSERT_EQ(h.put("k1", "new1"), Status::Ok);   // goes to the fresh table
    // The pinned guard still reads its (old) table safely.
    ASSERT_EQ(pinned.get("k1", buf, len), Status::Ok);
    EXPECT_EQ(std::string_view(reinterpret_cast<const char*>(buf.data()), len), "old1");
    {
      const Hyperion::ReadGuard nested = reader->pin();   // nests: same epoch pin, newest table
      ASSERT_EQ(nested.get("k1", buf, len), Status::Ok);
      EXPECT_EQ(std::string_view(reinterpret_cast<const char*>(buf.data()), len), "new1");
    }
    EXPECT_EQ(h.reclaim(), 1u) << "the outer guard still pins";
  }
  EXPECT_EQ(h.reclaim(), 0u);
  EXPECT_EQ(h.stats().retired_tables, 0u);
  ASSERT_EQ(reader->get("k1", buf, len), Status::Ok);
  EXPECT_EQ(std::string_view(reinterpret_cast<const char*>(buf.data()), len), "new1");
  EXPECT_EQ(h.stats().compactions, 1u);
  EXPECT_EQ(h.size(), 25u);
}

TEST(Hyperion, CompactionRefusesWhenTooManyTablesArePinned) {
  Hyperion h = make_store();
  ASSERT_EQ(h.put("k", "v"), Status::Ok);
  auto reader = h.reader();
  ASSERT_TRUE(reader.ok());
  const Hyperion::ReadGuard pinned = reader->pin();
  for (unsigned i = 0; i < Hyperion::kMaxRetiredTables; ++i) ASSERT_TRUE(h.compact().ok()) << i;
  auto refused = h.compact();
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code, Status::Retry);
  EXPECT_EQ(get_string(h, "k"), "v");
}

// ---- file-backed -------------------------------------------------------------------------------------

class HyperionFile : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = temp_path(::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::remove(path_.c_str());
  }
  void TearDown() override {
    std::remove(path_.c_str());
    std::remove((path_ + ".compact").c_str());
  }
  Result<Hyperion> open(std::size_t arena_bytes = std::size_t{1} << 20) const {
    Hyperion::Options o;
    o.arena_bytes = arena_bytes;
    o.slots = 1024;
    o.path = path_;
    o.huge_pages = false;
    return Hyperion::create(o);
  }
  std::string path_;
};

TEST_F(HyperionFile, WarmRestartReopensTheLastState) {
  {
    auto h = open();
    ASSERT_TRUE(h.ok()) << h.error().message;
    EXPECT_TRUE(h->stats().file_backed);
    for (int i = 0; i < 100; ++i) ASSERT_EQ(h->put("k" + std::to_string(i), "v" + std::to_string(i)), Status::Ok);
    ASSERT_EQ(h->put("k5", "in place"), Status::Ok);
    ASSERT_EQ(h->put("k6", std::string(300, 'L')), Status::Ok);   // appended, supersedes the old record
    ASSERT_EQ(h->erase("k7"), Status::Ok);
    ASSERT_EQ(h->erase("k8"), Status::Ok);
    ASSERT_EQ(h->put("k8", "reborn"), Status::Ok);
    const std::uint32_t n = 42;
    ASSERT_EQ(h->put("typed", n), Status::Ok);
  }
  auto h = open();
  ASSERT_TRUE(h.ok()) << h.error().message;
  EXPECT_EQ(h->size(), 100u);
  EXPECT_EQ(h->stats().torn_records, 0u);
  EXPECT_EQ(get_string(*h, "k0"), "v0");
  EXPECT_EQ(get_string(*h, "k99"), "v99");
  EXPECT_EQ(get_string(*h, "k5"), "in place");
  EXPECT_EQ(get_string(*h, "k6"), std::string(300, 'L'));
  EXPECT_FALSE(h->contains("k7"));
  EXPECT_EQ(get_string(*h, "k8"), "reborn");
  std::uint32_t n = 0;
  ASSERT_EQ(h->get("typed", n), Status::Ok);
  EXPECT_EQ(n, 42u);
  // And it keeps working after recovery: appends land after the recovered records.
  ASSERT_EQ(h->put("after", "restart"), Status::Ok);
  EXPECT_EQ(get_string(*h, "after"), "restart");
  EXPECT_EQ(get_string(*h, "k99"), "v99");
}

TEST_F(HyperionFile, RefusesASecondOpenAWrongSizeAndAForeignFile) {
  {
    auto h = open();
    ASSERT_TRUE(h.ok());
    auto second = open();
    ASSERT_FALSE(second.ok());
    EXPECT_EQ(second.error().code, Status::IoError) << second.error().message;
  }
  auto wrong_size = open(std::size_t{2} << 20);
  ASSERT_FALSE(wrong_size.ok());
  EXPECT_EQ(wrong_size.error().code, Status::InvalidArgument);
  {
    std::ofstream f(path_, std::ios::binary | std::ios::trunc);
    const std::string junk(4096, 'j');
    f.write(junk.data(), static_cast<std::streamsize>(junk.size()));
  }
  auto foreign = open(4096);
  ASSERT_FALSE(foreign.ok());
  EXPECT_EQ(foreign.error().code, Status::Malformed);
}

// Simulated crashes: the test edits the store file the way a process killed mid-write would have
// left it, then reopens. Torn records must be detected, skipped, counted, and never served.
TEST_F(HyperionFile, TornRecordsAreSkippedNeverServed) {
  std::uint64_t victim_offset = 0;
  {
    auto h = open();
    ASSERT_TRUE(h.ok());
    ASSERT_EQ(h->put("victim", std::string(40, 'v')), Status::Ok);   // first record: intact ones follow it
    for (int i = 0; i < 10; ++i) ASSERT_EQ(h->put("good" + std::to_string(i), std::string(40, 'g')), Status::Ok);
    victim_offset = format::kArenaHeaderBytes;
  }
  std::FILE* f = std::fopen(path_.c_str(), "r+b");
  ASSERT_NE(f, nullptr);
  format::FileHeader header;
  ASSERT_EQ(std::fread(&header, sizeof header, 1, f), 1u);
  // 1. An in-place update cut short: half of the victim's value rewritten, checksum not updated.
  ASSERT_EQ(std::fseek(f, static_cast<long>(victim_offset + format::value_offset(6)), SEEK_SET), 0);
  const std::string half(20, 'X');
  ASSERT_EQ(std::fwrite(half.data(), 1, half.size(), f), half.size());
  // 2. An append cut short: header, key and part of the value of a new record, high-water raised.
  const std::string key = "partial";
  format::RecordMeta meta{};
  meta.magic = format::kRecordMagic;
  meta.key_len = static_cast<std::uint16_t>(key.size());
  meta.kind = static_cast<std::uint8_t>(format::RecordKind::Value);
  meta.value_capacity = static_cast<std::uint32_t>(format::record_size(key.size(), 64) - format::value_offset(key.size()));
  const std::uint64_t len_crc = format::pack_len_crc(64, 0xDEADBEEF);
  const std::uint64_t at = header.used;
  ASSERT_EQ(std::fseek(f, static_cast<long>(at), SEEK_SET), 0);
  ASSERT_EQ(std::fwrite(&meta, sizeof meta, 1, f), 1u);
  ASSERT_EQ(std::fwrite(&len_crc, sizeof len_crc, 1, f), 1u);
  ASSERT_EQ(std::fwrite(key.data(), 1, key.size(), f), key.size());
  ASSERT_EQ(std::fseek(f, static_cast<long>(at + format::value_offset(key.size())), SEEK_SET), 0);
  ASSERT_EQ(std::fwrite(half.data(), 1, half.size(), f), half.size());
  header.used = at + format::record_size(key.size(), 64);
  ASSERT_EQ(std::fseek(f, 0, SEEK_SET), 0);
  ASSERT_EQ(std::fwrite(&header, sizeof header, 1, f), 1u);
  ASSERT_EQ(std::fclose(f), 0);

  {
    auto h = open();
    ASSERT_TRUE(h.ok()) << h.error().message;
    EXPECT_EQ(h->stats().torn_records, 2u);
    EXPECT_FALSE(h->contains("victim")) << "a torn value is never served";
    EXPECT_FALSE(h->contains("partial"));
    EXPECT_EQ(h->size(), 10u);
    for (int i = 0; i < 10; ++i) EXPECT_EQ(get_string(*h, "good" + std::to_string(i)), std::string(40, 'g'));
    // The torn append's bytes were cleared: new records go where it was and survive a restart.
    ASSERT_EQ(h->put("fresh", "after the crash"), Status::Ok);
    ASSERT_EQ(h->put("victim", "rewritten"), Status::Ok);
  }
  auto h = open();
  ASSERT_TRUE(h.ok());
  EXPECT_EQ(h->stats().torn_records, 1u) << "only the torn in-place record remains (garbage)";
  EXPECT_EQ(get_string(*h, "fresh"), "after the crash");
  EXPECT_EQ(get_string(*h, "victim"), "rewritten");
  EXPECT_FALSE(h->contains("partial"));
  EXPECT_EQ(h->size(), 12u);
}

TEST_F(HyperionFile, TornHeaderEndsTheScan) {
  {
    auto h = open();
    ASSERT_TRUE(h.ok());
    ASSERT_EQ(h->put("a", "1"), Status::Ok);
  }
  std::FILE* f = std::fopen(path_.c_str(), "r+b");
  ASSERT_NE(f, nullptr);
  format::FileHeader header;
  ASSERT_EQ(std::fread(&header, sizeof header, 1, f), 1u);
  // Only the first bytes of the next record landed (no magic yet), but the high-water was raised.
  ASSERT_EQ(std::fseek(f, static_cast<long>(header.used + 8), SEEK_SET), 0);
  const std::string bits = "\x01\x02\x03\x04";
  ASSERT_EQ(std::fwrite(bits.data(), 1, bits.size(), f), bits.size());
  header.used += format::kRecordAlign;
  ASSERT_EQ(std::fseek(f, 0, SEEK_SET), 0);
  ASSERT_EQ(std::fwrite(&header, sizeof header, 1, f), 1u);
  ASSERT_EQ(std::fclose(f), 0);
  auto h = open();
  ASSERT_TRUE(h.ok());
  EXPECT_EQ(h->stats().torn_records, 1u);
  EXPECT_EQ(get_string(*h, "a"), "1");
  EXPECT_EQ(h->stats().bytes_used, format::kRecordAlign);
}

TEST_F(HyperionFile, CompactionRewritesTheFileAtomically) {
  {
    auto h = open();
    ASSERT_TRUE(h.ok());
    for (int i = 0; i < 200; ++i) ASSERT_EQ(h->put("k" + std::to_string(i), std::to_string(i)), Status::Ok);
    for (int i = 0; i < 200; i += 2) ASSERT_EQ(h->erase("k" + std::to_string(i)), Status::Ok);
    const std::uint64_t before = h->stats().bytes_used;
    ASSERT_TRUE(h->compact().ok());
    EXPECT_LT(h->stats().bytes_used, before);
    EXPECT_EQ(h->stats().garbage_bytes, 0u);
    EXPECT_FALSE(std::filesystem::exists(path_ + ".compact"));
    ASSERT_EQ(h->put("post", "compaction"), Status::Ok);
    ASSERT_TRUE(h->sync().ok());
  }
  auto h = open();
  ASSERT_TRUE(h.ok()) << h.error().message;
  EXPECT_EQ(h->size(), 101u);
  for (int i = 1; i < 200; i += 2) EXPECT_EQ(get_string(*h, "k" + std::to_string(i)), std::to_string(i));
  EXPECT_FALSE(h->contains("k0"));
  EXPECT_EQ(get_string(*h, "post"), "compaction");
}

// ---- CRC-32C -----------------------------------------------------------------------------------------

TEST(Crc32c, KnownVectorsAndPortableFallbackAgree) {
  EXPECT_EQ(crc32c("123456789", 9), 0xE3069283u);   // the standard check value
  EXPECT_EQ(crc32c_extend_portable(0, "123456789", 9), 0xE3069283u);
  EXPECT_EQ(crc32c(nullptr, 0), 0u);
  const std::array<unsigned char, 32> zeros{};
  EXPECT_EQ(crc32c(zeros.data(), zeros.size()), 0x8A9136AAu);   // RFC 3720 B.4
  std::mt19937 rng(7);
  std::vector<unsigned char> data(1000);
  for (auto& b : data) b = static_cast<unsigned char>(rng());
  for (std::size_t n : {0u, 1u, 7u, 8u, 9u, 63u, 64u, 999u, 1000u}) {
    EXPECT_EQ(crc32c(data.data(), n), crc32c_extend_portable(0, data.data(), n)) << n;
    const std::size_t split = n / 3;
    EXPECT_EQ(crc32c_extend(crc32c(data.data(), split), data.data() + split, n - split), crc32c(data.data(), n));
  }
  const std::uint32_t before = crc32c(data.data(), data.size());
  data[500] ^= 1;   // one flipped bit is always detected
  EXPECT_NE(crc32c(data.data(), data.size()), before);
}

}  // namespace
}  // namespace hypergate::kv
