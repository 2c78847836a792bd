// Hyperion under real threads: one writer updating, erasing and compacting while readers read.
// Every value carries its own checksum and the key it belongs to, so a reader that ever saw a torn
// value (a mix of two writes) or another key's value fails the test. Run under TSan as well: the
// seqlock copies are atomic word loads, so TSan must report nothing.
#include <gtest/gtest.h>

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "hypergate/kv/hyperion.hpp"

namespace hypergate::kv {
namespace {

constexpr int kKeys = 128;
constexpr std::size_t kMinWords = 4;    // 32-byte values ...
constexpr std::size_t kMaxWords = 24;   // ... up to 192 bytes: growth beyond a record repoints the slot

#if defined(__SANITIZE_THREAD__) || defined(HG_SANITIZED)
constexpr auto kRunFor = std::chrono::milliseconds(1500);
#else
constexpr auto kRunFor = std::chrono::milliseconds(2000);
#endif

std::string key_name(int id) { return "SYM" + std::to_string(1000 + id) + "-XNAS"; }

std::uint64_t mix(std::uint64_t seq, std::uint64_t i) noexcept {
  std::uint64_t x = seq * 0x9E3779B97F4A7C15ull + i * 0xC2B2AE3D27D4EB4Full;
  x ^= x >> 29;
  return x * 0xBF58476D1CE4E5B9ull;
}

/// value = key id | seq | mix(seq, 2) ... | checksum over all previous words and the length.
std::size_t make_value(std::array<std::uint64_t, kMaxWords>& w, int key, std::uint64_t seq, std::size_t words) {
  w[0] = static_cast<std::uint64_t>(key);
  w[1] = seq;
  std::uint64_t sum = words;
  for (std::size_t i = 2; i + 1 < words; ++i) w[i] = mix(seq, i);
  for (std::size_t i = 0; i + 1 < words; ++i) sum = sum * 31 + w[i];
  w[words - 1] = sum;
  return words * 8;
}

/// Returns the value's seq, or ~0 when the bytes are not exactly one value written for `key`.
std::uint64_t check_value(const std::array<std::uint64_t, kMaxWords>& w, std::size_t len, int key) {
  if (len % 8 != 0 || len / 8 < kMinWords || len / 8 > kMaxWords) return ~std::uint64_t{0};
  const std::size_t words = len / 8;
  if (w[0] != static_cast<std::uint64_t>(key)) return ~std::uint64_t{0};
  std::uint64_t sum = words;
  for (std::size_t i = 2; i + 1 < words; ++i) {
    if (w[i] != mix(w[1], i)) return ~std::uint64_t{0};
  }
  for (std::size_t i = 0; i + 1 < words; ++i) sum = sum * 31 + w[i];
  return w[words - 1] == sum ? w[1] : ~std::uint64_t{0};
}

struct ReaderTally {
  std::uint64_t ok = 0;
  std::uint64_t not_found = 0;
  std::uint64_t retry = 0;
  std::uint64_t torn = 0;
  std::uint64_t went_back = 0;   // a later read of a key returned an older value than an earlier one
};

Hyperion make_store(std::size_t arena_bytes) {
  Hyperion::Options o;
  o.arena_bytes = arena_bytes;
  o.slots = 512;
  o.huge_pages = false;
  auto r = Hyperion::create(o);
  EXPECT_TRUE(r.ok());
  return std::move(r).value();
}

// The writer thread: updates (in place and by repointing), erases, and compacts when the arena
// fills or on a schedule, until `stop`. Returns the number of compactions.
std::uint64_t run_writer(Hyperion& h, const std::atomic<bool>& stop, std::uint64_t& ops) {
  std::mt19937_64 rng(1);
  std::array<std::uint64_t, kMaxWords> w{};
  std::uint64_t seq = 1;
  std::uint64_t compactions = 0;
  while (!stop.load(std::memory_order_relaxed)) {   // relaxed: a flag; no data rides on it
    const int key = static_cast<int>(rng() % kKeys);
    if (rng() % 20 == 0) {
      (void)h.erase(key_name(key));
    } else {
      const std::size_t words = kMinWords + rng() % (kMaxWords - kMinWords + 1);
      const std::size_t len = make_value(w, key, seq++, words);
      const std::string_view bytes(reinterpret_cast<const char*>(w.data()), len);
      Status st = h.put(key_name(key), bytes);
      if (st == Status::ArenaFull) {
        if (h.compact().ok()) ++compactions;
        st = h.put(key_name(key), bytes);
      }
      EXPECT_TRUE(st == Status::Ok || st == Status::ArenaFull) << to_string(st);
    }
    if (++ops % 5000 == 0 && h.compact().ok()) ++compactions;   // compaction while readers are inside
    if (ops % 64 == 0) h.reclaim();
  }
  return compactions;
}

TEST(HyperionStress, OneWriterManyReadersNeverSeeTornOrMixedValues) {
  Hyperion h = make_store(std::size_t{1} << 20);   // small: the writer fills it and compacts often
  constexpr int kReaders = 3;
  std::atomic<bool> stop{false};
  std::atomic<int> started{0};
  std::vector<ReaderTally> tallies(kReaders);
  std::vector<std::thread> readers;
  for (int r = 0; r < kReaders; ++r) {
    auto handle = h.reader();
    ASSERT_TRUE(handle.ok());
    readers.emplace_back([&, r, reader = std::move(handle).value()]() mutable {
      ReaderTally& t = tallies[static_cast<std::size_t>(r)];
      std::array<std::uint64_t, kKeys> last_seq{};
      std::array<std::uint64_t, kMaxWords> w{};
      std::mt19937 rng(static_cast<unsigned>(100 + r));
      started.fetch_add(1);
      while (!stop.load(std::memory_order_relaxed)) {   // relaxed: a flag; no data rides on it
        // A burst of lookups under one epoch pin, as a gateway worker would do per burst.
        const Hyperion::ReadGuard guard = reader.pin();
        for (int i = 0; i < 16; ++i) {
          const int key = static_cast<int>(rng() % kKeys);
          std::size_t len = 0;
          const Status st = guard.get(key_name(key), std::as_writable_bytes(std::span(w)), len);
          if (st == Status::NotFound) {
            ++t.not_found;
          } else if (st == Status::Retry) {
            ++t.retry;
          } else if (st != Status::Ok) {
            ++t.torn;
          } else {
            const std::uint64_t seq = check_value(w, len, key);
            if (seq == ~std::uint64_t{0}) {
              ++t.torn;
            } else {
              ++t.ok;
              if (seq < last_seq[static_cast<std::size_t>(key)]) ++t.went_back;
              last_seq[static_cast<std::size_t>(key)] = seq;
            }
          }
        }
      }
    });
  }
  while (started.load() < kReaders) std::this_thread::yield();
  std::uint64_t ops = 0;
  std::uint64_t compactions = 0;
  std::thread writer([&] { compactions = run_writer(h, stop, ops); });
  std::this_thread::sleep_for(kRunFor);
  stop.store(true);
  writer.join();
  for (auto& t : readers) t.join();

  std::uint64_t total_ok = 0;
  for (int r = 0; r < kReaders; ++r) {
    const ReaderTally& t = tallies[static_cast<std::size_t>(r)];
    EXPECT_EQ(t.torn, 0u) << "reader " << r << " saw a torn or foreign value";
    EXPECT_EQ(t.went_back, 0u) << "reader " << r << " saw a key's value go back in time";
    EXPECT_GT(t.ok, 0u) << "reader " << r << " made no progress";
    total_ok += t.ok;
    std::printf("reader %d: ok=%llu not_found=%llu retry=%llu\n", r, static_cast<unsigned long long>(t.ok),
                static_cast<unsigned long long>(t.not_found), static_cast<unsigned long long>(t.retry));
  }
  std::printf("writer: ops=%llu compactions=%llu\n", static_cast<unsigned long long>(ops),
              static_cast<unsigned long long>(compactions));
  EXPECT_GT(ops, 1000u);
  EXPECT_GT(compactions, 0u);
  EXPECT_EQ(h.reclaim(), 0u) << "all readers left: every retired table is freed";
}

// Readers register, pin, read and unregister in a loop while the writer compacts continuously:
// a table freed while a reader is still inside would show up under ASan/TSan (or as a bad value).
TEST(HyperionStress, ReadersComeAndGoWhileTheWriterCompacts) {
  Hyperion h = make_store(std::size_t{1} << 20);
  std::array<std::uint64_t, kMaxWords> w{};
  for (int k = 0; k < kKeys; ++k) {
    const std::size_t len = make_value(w, k, 1, kMinWords);
    ASSERT_EQ(h.put(key_name(k), std::string_view(reinterpret_cast<const char*>(w.data()), len)), Status::Ok);
  }
  std::atomic<bool> stop{false};
  std::atomic<std::uint64_t> bad{0};
  std::atomic<std::uint64_t> reads{0};
  std::vector<std::thread> readers;
  for (int r = 0; r < 2; ++r) {
    readers.emplace_back([&, r] {
      std::array<std::uint64_t, kMaxWords> v{};
      std::mt19937 rng(static_cast<unsigned>(7 + r));
      while (!stop.load(std::memory_order_relaxed)) {   // relaxed: a flag; no data rides on it
        auto reader = h.reader();   // registration is thread-safe
        if (!reader.ok()) {
          bad.fetch_add(1);
          continue;
        }
        for (int burst = 0; burst < 4; ++burst) {
          const Hyperion::ReadGuard guard = reader->pin();
          for (int i = 0; i < 8; ++i) {
            const int key = static_cast<int>(rng() % kKeys);
            std::size_t len = 0;
            const Status st = guard.get(key_name(key), std::as_writable_bytes(std::span(v)), len);
            if (st == Status::Ok && check_value(v, len, key) == ~std::uint64_t{0}) bad.fetch_add(1);
            if (st != Status::Ok && st != Status::Retry) bad.fetch_add(1);   // no key is ever erased here
            reads.fetch_add(1, std::memory_order_relaxed);   // relaxed: a statistic
          }
        }
      }
    });
  }
  std::mt19937_64 rng(3);
  std::uint64_t seq = 2;
  std::uint64_t compactions = 0;
  const auto until = std::chrono::steady_clock::now() + kRunFor;
  while (std::chrono::steady_clock::now() < until) {
    for (int i = 0; i < 200; ++i) {
      const int key = static_cast<int>(rng() % kKeys);
      const std::size_t len = make_value(w, key, seq++, kMinWords + rng() % (kMaxWords - kMinWords + 1));
      const Status st = h.put(key_name(key), std::string_view(reinterpret_cast<const char*>(w.data()), len));
      ASSERT_TRUE(st == Status::Ok || st == Status::ArenaFull);
    }
    if (h.compact().ok()) ++compactions;
  }
  stop.store(true);
  for (auto& t : readers) t.join();
  EXPECT_EQ(bad.load(), 0u);
  EXPECT_GT(reads.load(), 0u);
  EXPECT_GT(compactions, 10u);
  EXPECT_EQ(h.reclaim(), 0u);
  EXPECT_EQ(h.stats().readers, 0u);
}

}  // namespace
}  // namespace hypergate::kv
