#pragma once
// Hyperion's memory and file format: the arena's file header, the record layout and the index slot.
//
// This is what a store file on disk contains, so it is versioned (kFormatVersion) and changes only
// with a version bump. Tests use these definitions to forge torn records; nothing else outside
// hyperion.hpp/.cpp should need them.
//
//   arena (anonymous memory or a MAP_SHARED file; offsets are from its start)
//   +-----------------------+ 0
//   | FileHeader (128 B)    |  magic "HYPERION", format version, record alignment, arena bytes, used
//   +-----------------------+ 128 = kArenaHeaderBytes
//   | record                |  every record starts on a kRecordAlign (64 B) boundary
//   | record                |
//   | ...                   |
//   +-----------------------+ used (bump pointer; bytes above it are zero)
//   | zero                  |
//   +-----------------------+ arena_bytes
//
//   record
//   +0   RecordMeta  magic u32 | key_len u16 | kind u8 | 0 u8 | value_capacity u32 | 0 u32   (immutable)
//   +16  len_crc     value_len (low 32 bits) | crc32c (high 32 bits)   (rewritten by in-place updates)
//   +24  key bytes, zero-padded to a multiple of 8
//   +24+pad8(key_len)  value bytes, value_capacity of them (a multiple of 8), zero-padded
//   ... zero padding up to the next 64-byte boundary (that slack is part of value_capacity)
//
// crc32c covers RecordMeta, value_len, the key and value_len value bytes. A record whose magic or
// sizes are impossible ends the scan on open; a record whose checksum fails is torn: skipped, counted.
#include <cstddef>
#include <cstdint>

#include "hypergate/core/cache.hpp"
#include "hypergate/kv/crc32c.hpp"

namespace hypergate::kv::format {

/// Records start on a cache line: a lookup of a 16-byte key with a 64-byte value touches one
/// 128-byte adjacent-line pair (header + key + value) instead of straddling three lines.
inline constexpr std::size_t kRecordAlign = kCacheLine;
/// The file header takes two record units, so arena offsets 0 and 1 (in units) never name a record
/// and can encode the index's empty and tombstone markers.
inline constexpr std::size_t kArenaHeaderBytes = 2 * kRecordAlign;

inline constexpr std::uint64_t kFileMagic = 0x4E4F495245505948ull;   // "HYPERION", little-endian
inline constexpr std::uint32_t kFormatVersion = 1;
inline constexpr std::uint32_t kRecordMagic = 0x3152594Bu;            // "KYR1", little-endian

enum class RecordKind : std::uint8_t {
  Value = 1,    // a key and its value
  Erased = 2,   // file-backed stores only: the key was erased (no value bytes)
};

/// First bytes of the arena. `used` is the bump pointer: the writer raises it *before* writing a
/// record, so after a crash every written byte lies below it.
struct FileHeader {
  std::uint64_t magic;
  std::uint32_t format_version;
  std::uint32_t record_align;
  std::uint64_t arena_bytes;
  std::uint64_t used;
  std::uint8_t reserved[kArenaHeaderBytes - 32];
};
static_assert(sizeof(FileHeader) == kArenaHeaderBytes, "the header occupies exactly two record units");

/// The immutable part of a record header, written once before the record is published.
struct RecordMeta {
  std::uint32_t magic;
  std::uint16_t key_len;
  std::uint8_t kind;
  std::uint8_t reserved0;
  std::uint32_t value_capacity;
  std::uint32_t reserved1;
};
static_assert(sizeof(RecordMeta) == 16, "RecordMeta is two words");

inline constexpr std::size_t kLenCrcOffset = sizeof(RecordMeta);   // 8-aligned: accessed as one atomic word
inline constexpr std::size_t kRecordHeaderBytes = kLenCrcOffset + 8;
static_assert(kLenCrcOffset % 8 == 0);

[[nodiscard]] constexpr std::size_t pad8(std::size_t n) noexcept { return (n + 7) & ~std::size_t{7}; }
[[nodiscard]] constexpr std::size_t round_up(std::size_t n, std::size_t to) noexcept {
  return (n + to - 1) / to * to;
}
[[nodiscard]] constexpr std::size_t value_offset(std::size_t key_len) noexcept {
  return kRecordHeaderBytes + pad8(key_len);
}
/// Record footprint for a key and at least `min_capacity` value bytes.
[[nodiscard]] constexpr std::size_t record_size(std::size_t key_len, std::size_t min_capacity) noexcept {
  return round_up(value_offset(key_len) + min_capacity, kRecordAlign);
}
static_assert(value_offset(0) % 8 == 0 && value_offset(13) % 8 == 0, "value words are 8-aligned");

[[nodiscard]] constexpr std::uint64_t pack_len_crc(std::uint32_t len, std::uint32_t crc) noexcept {
  return static_cast<std::uint64_t>(len) | (static_cast<std::uint64_t>(crc) << 32);
}
[[nodiscard]] constexpr std::uint32_t len_of(std::uint64_t len_crc) noexcept {
  return static_cast<std::uint32_t>(len_crc);
}
[[nodiscard]] constexpr std::uint32_t crc_of(std::uint64_t len_crc) noexcept {
  return static_cast<std::uint32_t>(len_crc >> 32);
}

/// The checksum stored in a record: RecordMeta, value_len, key, value.
[[nodiscard]] inline std::uint32_t record_checksum(const RecordMeta& meta, std::uint32_t value_len,
                                                   const void* key, const void* value) noexcept {
  std::uint32_t c = crc32c_extend(0, &meta, sizeof meta);
  c = crc32c_extend(c, &value_len, sizeof value_len);
  c = crc32c_extend(c, key, meta.key_len);
  return crc32c_extend(c, value, value_len);
}

/// One index slot: 16 bytes, four per cache line.
///   version  SeqLock of the slot and of the value it points to: odd while the writer changes either
///   ref      tag (top 24 bits of the key hash) << 40 | arena offset / kRecordAlign (40 bits: 64 TiB)
/// Both words are accessed only through std::atomic_ref<std::uint64_t>.
struct alignas(16) IndexSlot {
  std::uint64_t version;
  std::uint64_t ref;
};
static_assert(sizeof(IndexSlot) == 16 && alignof(IndexSlot) == 16, "four slots per cache line, never split");

inline constexpr unsigned kOffsetBits = 40;
inline constexpr std::uint64_t kOffsetMask = (std::uint64_t{1} << kOffsetBits) - 1;
inline constexpr std::uint64_t kEmptyRef = 0;       // offset unit 0 is the file header
inline constexpr std::uint64_t kTombstoneRef = 1;   // offset unit 1 is the file header too

[[nodiscard]] constexpr std::uint64_t tag_of(std::uint64_t hash) noexcept { return hash >> kOffsetBits; }
[[nodiscard]] constexpr std::uint64_t make_ref(std::uint64_t hash, std::uint64_t offset) noexcept {
  return (tag_of(hash) << kOffsetBits) | (offset / kRecordAlign);
}
[[nodiscard]] constexpr std::uint64_t ref_offset(std::uint64_t ref) noexcept {
  return (ref & kOffsetMask) * kRecordAlign;
}
[[nodiscard]] constexpr std::uint64_t ref_tag(std::uint64_t ref) noexcept { return ref >> kOffsetBits; }
[[nodiscard]] constexpr bool ref_is_live(std::uint64_t ref) noexcept { return ref > kTombstoneRef; }
static_assert(make_ref(0, kArenaHeaderBytes) > kTombstoneRef, "the first record is distinguishable from markers");

}  // namespace hypergate::kv::format
