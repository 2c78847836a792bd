#pragma once
// ContentRouter: rules on the key prefix or the message type, first match wins.
//
//   Rule::key_prefix("AAPL", sinks)   key starts with "AAPL"  -> those sinks
//   Rule::type('A', sinks)            Message::type == 'A'    -> those sinks
//   Rule::...(..., drop)              a rule may drop instead (counted by the pipeline as a drop)
// A message that matches no rule takes the default route (all sinks unless configured otherwise).
// The lane comes from the key hash, so per-key order holds.
//
// Cost: a linear scan of the rules with a prefix compare each. Meant for a handful of rules; the
// rules are fixed at construction (cold path) and route() does not allocate.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "hypergate/route/route.hpp"
#include "routing/routing.hpp"

namespace hypergate::strategies {

class ContentRouter {
 public:
  struct Rule {
    enum class Match : std::uint8_t { KeyPrefix, Type };
    Match match = Match::KeyPrefix;
    std::string prefix;        ///< Match::KeyPrefix
    std::uint16_t type = 0;    ///< Match::Type
    std::uint64_t sinks = route::kAllSinks;
    bool drop = false;

    [[nodiscard]] static Rule key_prefix(std::string p, std::uint64_t sinks, bool drop = false) {
      return Rule{Match::KeyPrefix, std::move(p), 0, sinks, drop};
    }
    [[nodiscard]] static Rule message_type(std::uint16_t t, std::uint64_t sinks, bool drop = false) {
      return Rule{Match::Type, {}, t, sinks, drop};
    }
  };

  ContentRouter(unsigned lanes, std::vector<Rule> rules, std::uint64_t default_sinks = route::kAllSinks,
                bool default_drop = false)
      : mask_(lane_mask(lanes)), rules_(std::move(rules)), default_sinks_(default_sinks), default_drop_(default_drop) {}

  [[nodiscard]] route::Route route(const Message& m) const noexcept {
    const auto lane = static_cast<std::uint16_t>(m.key_hash & mask_);
    const std::string_view key = m.key();
    for (const Rule& r : rules_) {
      const bool hit = r.match == Rule::Match::Type ? m.type == r.type : key.starts_with(r.prefix);
      if (hit) return {r.sinks, lane, r.drop ? route::Action::Drop : route::Action::Deliver};
    }
    return {default_sinks_, lane, default_drop_ ? route::Action::Drop : route::Action::Deliver};
  }

  [[nodiscard]] const std::vector<Rule>& rules() const noexcept { return rules_; }

 private:
  std::uint16_t mask_;
  std::vector<Rule> rules_;
  std::uint64_t default_sinks_;
  bool default_drop_;
};

}  // namespace hypergate::strategies
