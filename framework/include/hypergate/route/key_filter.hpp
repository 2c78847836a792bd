#pragma once
// KeyFilter: allow and deny lists of exact routing keys.
//
//   deny list    a message whose key is on it is rejected ("key_denied")
//   allow list   when non-empty, a message whose key is not on it is rejected ("key_not_allowed")
// A key on both lists is denied. With both lists empty every message passes.
//
// Lookup is one probe sequence in an open-addressing table keyed by Message::key_hash (which the
// decoder already computed), confirmed by comparing the key bytes, so a hash collision never lets a
// denied key through or blocks an allowed one. The table is built once by the constructor (cold
// path) at a load factor <= 1/2 and never changes afterwards: check() does not allocate.
// Relies on Message::key_hash == hash_bytes(key()), which Message::set_key() maintains.
#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "hypergate/core/hash.hpp"
#include "hypergate/core/message.hpp"
#include "hypergate/route/stage.hpp"

namespace hypergate::route {

class KeyFilter {
 public:
  static constexpr std::array<std::string_view, 2> kReasons{"key_denied", "key_not_allowed"};
  enum Reason : std::size_t { kDenied = 0, kNotAllowed = 1 };

  KeyFilter() = default;
  KeyFilter(const std::vector<std::string>& allow, const std::vector<std::string>& deny) {
    std::size_t capacity = 8;
    while (capacity < 2 * (allow.size() + deny.size())) capacity *= 2;
    slots_.assign(capacity, Slot{});
    mask_ = capacity - 1;
    for (const auto& k : allow) insert(k, kOnAllow);
    for (const auto& k : deny) insert(k, kOnDeny);
    has_allow_ = !allow.empty();
    active_ = !allow.empty() || !deny.empty();
  }

  [[nodiscard]] Verdict check(const Message& m) const noexcept {
    if (!active_) return Verdict::pass();
    const std::uint8_t lists = lookup(m.key(), m.key_hash);
    if (lists & kOnDeny) [[unlikely]] return Verdict::reject(kDenied);
    if (has_allow_ && !(lists & kOnAllow)) [[unlikely]] return Verdict::reject(kNotAllowed);
    return Verdict::pass();
  }

  [[nodiscard]] std::size_t size() const noexcept { return keys_.size(); }

 private:
  static constexpr std::uint8_t kOnAllow = 1;
  static constexpr std::uint8_t kOnDeny = 2;
  struct Slot {
    std::uint64_t hash = 0;
    std::uint32_t key = 0;    ///< index + 1 into keys_; 0 = empty slot
    std::uint8_t lists = 0;   ///< kOnAllow | kOnDeny
  };

  void insert(const std::string& k, std::uint8_t list) {
    const std::uint64_t h = hash_bytes(k);
    for (std::size_t i = h & mask_;; i = (i + 1) & mask_) {
      Slot& s = slots_[i];
      if (s.key == 0) {
        keys_.push_back(k);
        s = Slot{h, static_cast<std::uint32_t>(keys_.size()), list};
        return;
      }
      if (s.hash == h && keys_[s.key - 1] == k) {
        s.lists |= list;
        return;
      }
    }
  }
  [[nodiscard]] std::uint8_t lookup(std::string_view k, std::uint64_t h) const noexcept {
    // Terminates: the load factor is <= 1/2, so an empty slot is always reached.
    for (std::size_t i = h & mask_;; i = (i + 1) & mask_) {
      const Slot& s = slots_[i];
      if (s.key == 0) return 0;
      if (s.hash == h && keys_[s.key - 1] == k) return s.lists;
    }
  }

  std::vector<Slot> slots_;
  std::vector<std::string> keys_;
  std::size_t mask_ = 0;
  bool has_allow_ = false;
  bool active_ = false;
};
static_assert(Validator<KeyFilter>);

}  // namespace hypergate::route
