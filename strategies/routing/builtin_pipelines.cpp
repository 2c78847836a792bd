// The built-in pipelines: option parsing and the compile-time compositions behind each name.
// Option keys are documented in builtin_pipelines.hpp.
#include "routing/builtin_pipelines.hpp"

#include <algorithm>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "hypergate/route/key_filter.hpp"
#include "hypergate/route/length_bounds.hpp"
#include "hypergate/route/passthrough_decoder.hpp"
#include "hypergate/route/pipeline.hpp"
#include "hypergate/route/rate_limiter.hpp"
#include "hypergate/route/sequence_check.hpp"
#include "routing/broadcast_router.hpp"
#include "routing/content_router.hpp"
#include "routing/failover_router.hpp"
#include "routing/hash_router.hpp"
#include "routing/round_robin_router.hpp"

namespace hypergate::strategies {
namespace {

using route::PipelineBase;
using route::PipelineContext;
using PipelineResult = Result<std::unique_ptr<PipelineBase>>;

Error option_error(config::Section& options, std::string_view key, std::string message) {
  options.error(key, message);
  return Error{Status::InvalidArgument, options.path() + "." + std::string(key) + ": " + message};
}

void finish(config::Section& options) {
  if (options.exists()) options.finish();
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

using route::known_sinks;
using route::sink_index;
using route::sinks_from_names;

std::vector<std::string_view> split_commas(std::string_view s) {
  std::vector<std::string_view> out;
  while (!s.empty()) {
    const auto comma = s.find(',');
    const std::string_view item = trim(s.substr(0, comma));
    if (!item.empty()) out.push_back(item);
    if (comma == std::string_view::npos) break;
    s.remove_prefix(comma + 1);
  }
  return out;
}

/// A destination: "all", "drop" or a list of sink names.
struct Destination {
  std::uint64_t sinks = route::kAllSinks;
  bool drop = false;
};
Result<Destination> parse_destination(const PipelineContext& ctx, std::string_view text) {
  text = trim(text);
  if (text == "all") return Destination{};
  if (text == "drop") return Destination{route::kAllSinks, true};
  const auto names = split_commas(text);
  if (names.empty()) return Error{Status::InvalidArgument, "empty destination (use sink names, \"all\" or \"drop\")"};
  auto mask = sinks_from_names(ctx, names);
  if (!mask) return mask.error();
  return Destination{*mask, false};
}

/// "prefix:AAPL -> a,b" | "type:A -> c" | "type:65 -> drop"
Result<ContentRouter::Rule> parse_rule(const PipelineContext& ctx, std::string_view text) {
  const auto arrow = text.find("->");
  if (arrow == std::string_view::npos) {
    return Error{Status::InvalidArgument, "rule '" + std::string(text) + "': expected \"prefix:P -> sinks\" or \"type:T -> sinks\""};
  }
  const std::string_view match = trim(text.substr(0, arrow));
  auto dest = parse_destination(ctx, text.substr(arrow + 2));
  if (!dest) return Error{dest.error().code, "rule '" + std::string(text) + "': " + dest.error().message};
  if (match.starts_with("prefix:")) {
    return ContentRouter::Rule::key_prefix(std::string(match.substr(7)), dest->sinks, dest->drop);
  }
  if (match.starts_with("type:")) {
    const std::string_view t = match.substr(5);
    if (t.size() == 1) return ContentRouter::Rule::message_type(static_cast<unsigned char>(t[0]), dest->sinks, dest->drop);
    unsigned value = 0;
    bool numeric = !t.empty() && t.size() <= 5;
    for (char c : t) {
      numeric = numeric && c >= '0' && c <= '9';
      value = value * 10 + static_cast<unsigned>(c - '0');
    }
    if (numeric && value <= 0xFFFF) {
      return ContentRouter::Rule::message_type(static_cast<std::uint16_t>(value), dest->sinks, dest->drop);
    }
  }
  return Error{Status::InvalidArgument,
               "rule '" + std::string(text) + "': match must be prefix:<key prefix> or type:<char or 0..65535>"};
}

Result<route::PassthroughDecoder> read_decoder(config::Section& options) {
  using Mode = route::PassthroughDecoder::KeyMode;
  const std::string mode = options.choice("key", "payload", {"payload", "first_word", "range", "source"});
  if (mode == "first_word") return route::PassthroughDecoder(Mode::FirstWord);
  if (mode == "source") return route::PassthroughDecoder(Mode::Source);
  if (mode == "range") {
    const auto offset = options.integer("key_offset", 0, 0, 65535);
    const auto length = options.integer("key_length", 0, 1, 65535);
    if (!options.has("key_length")) return option_error(options, "key_length", "required when key = \"range\"");
    return route::PassthroughDecoder(Mode::Range, static_cast<std::uint32_t>(offset), static_cast<std::uint32_t>(length));
  }
  return route::PassthroughDecoder(Mode::Payload);
}

/// The stages of "validated" before the router, read from the options.
struct ValidatedStages {
  route::PassthroughDecoder decoder;
  route::SequenceCheck<> sequence;
  route::LengthBounds length;
  route::KeyFilter keys;
  route::RateLimiter::Config rate;
};

template <class Router>
PipelineResult make_validated(ValidatedStages&& s, Router router) {
  return std::unique_ptr<PipelineBase>(route::make_pipeline(
      "validated", s.decoder,
      route::Validators{std::move(s.sequence), s.length, std::move(s.keys), route::RateLimiter(s.rate)},
      route::Transforms<>{}, std::move(router)));
}

std::vector<std::string_view> views(const std::vector<std::string>& v) {
  return {v.begin(), v.end()};
}

PipelineResult passthrough_factory(config::Section& options, const PipelineContext& ctx) {
  auto decoder = read_decoder(options);
  std::uint64_t sinks = route::kAllSinks;
  std::optional<Error> error;
  if (options.has("sinks")) {
    auto mask = sinks_from_names(ctx, views(options.string_list("sinks")));
    if (mask) {
      sinks = mask.value();
    } else {
      error = option_error(options, "sinks", mask.error().message);
    }
  }
  finish(options);
  if (!decoder) return decoder.error();
  if (error) return *error;
  return std::unique_ptr<PipelineBase>(route::make_pipeline("passthrough", *decoder, route::Validators<>{},
                                                            route::Transforms<>{}, HashRouter(ctx.lanes, sinks)));
}

PipelineResult validated_factory(config::Section& options, const PipelineContext& ctx) {
  auto decoder = read_decoder(options);
  if (!decoder) {
    finish(options);
    return decoder.error();
  }
  const bool sequence = options.boolean("sequence", true);
  const auto first_sequence = options.integer("first_sequence", 0, 0, INT64_MAX);
  const auto min_length = options.integer("min_length", 0, 0, UINT32_MAX);
  const auto max_length = options.integer("max_length", 65536, 0, UINT32_MAX);
  if (min_length > max_length) {
    finish(options);
    return option_error(options, "min_length", "min_length (" + std::to_string(min_length) +
                                                   ") is greater than max_length (" + std::to_string(max_length) + ")");
  }
  const auto allow = options.string_list("allow_keys");
  const auto deny = options.string_list("deny_keys");
  route::RateLimiter::Config rate;
  rate.rate_per_second = options.number("rate_limit", 0.0, 0.0, 1e9);
  const auto burst = options.integer("rate_burst", 0, 0, UINT32_MAX);
  rate.burst = burst > 0 ? static_cast<std::uint32_t>(burst)
                         : static_cast<std::uint32_t>(std::max(1.0, std::min(rate.rate_per_second, 4e9)));
  rate.table_size = static_cast<std::size_t>(options.integer("rate_table", 4096, 16, 1 << 24));

  ValidatedStages stages{*decoder, route::SequenceCheck<>(static_cast<std::uint64_t>(first_sequence), sequence),
                         route::LengthBounds(static_cast<std::uint32_t>(min_length), static_cast<std::uint32_t>(max_length)),
                         route::KeyFilter(allow, deny), rate};

  const std::string router =
      options.choice("router", "hash", {"hash", "round_robin", "content", "broadcast", "failover"});
  PipelineResult result = Error{Status::InvalidArgument, "unreachable"};
  if (router == "hash") {
    const auto names = options.string_list("sinks");
    auto mask = sinks_from_names(ctx, views(names));
    if (!mask) {
      result = option_error(options, "sinks", mask.error().message);
    } else {
      result = make_validated(std::move(stages), HashRouter(ctx.lanes, names.empty() ? route::kAllSinks : *mask));
    }
  } else if (router == "round_robin") {
    const auto over = options.choice("over", "lanes", {"lanes", "sinks"});
    result = make_validated(std::move(stages),
                            RoundRobinRouter(ctx.lanes, ctx.sink_count,
                                             over == "sinks" ? RoundRobinRouter::Over::Sinks : RoundRobinRouter::Over::Lanes));
  } else if (router == "content") {
    std::vector<ContentRouter::Rule> rules;
    std::optional<Error> error;
    for (const auto& text : options.string_list("rules")) {
      auto rule = parse_rule(ctx, text);
      if (!rule) {
        error = option_error(options, "rules", rule.error().message);
        break;
      }
      rules.push_back(std::move(*rule));
    }
    auto fallback = parse_destination(ctx, options.string("default_route", "all"));
    if (error) {
      result = std::move(*error);
    } else if (!fallback) {
      result = option_error(options, "default_route", fallback.error().message);
    } else {
      result = make_validated(std::move(stages),
                              ContentRouter(ctx.lanes, std::move(rules), fallback->sinks, fallback->drop));
    }
  } else if (router == "broadcast") {
    result = make_validated(std::move(stages), BroadcastRouter(ctx.lanes, ctx.sink_count));
  } else {  // failover
    const auto primary = options.required_string("primary");
    const auto backup = options.required_string("backup");
    if (!primary || !backup) {
      result = Error{Status::InvalidArgument, options.path() + ": router = \"failover\" needs primary and backup"};
    } else if (auto p = sink_index(ctx, *primary); !p) {
      result = option_error(options, "primary", "unknown sink '" + *primary + "' (sinks: " + known_sinks(ctx) + ")");
    } else if (auto b = sink_index(ctx, *backup); !b) {
      result = option_error(options, "backup", "unknown sink '" + *backup + "' (sinks: " + known_sinks(ctx) + ")");
    } else {
      result = make_validated(std::move(stages), FailoverRouter(ctx.lanes, *p, *b, ctx.health));
    }
  }
  finish(options);
  return result;
}

}  // namespace

Result<void> register_builtin_pipelines(route::PipelineRegistry& registry) {
  if (auto r = registry.add("passthrough", "one message per frame, key from the frame, hash routing",
                            passthrough_factory);
      !r) {
    return r;
  }
  return registry.add("validated",
                      "sequence, length, key allow/deny and per-key rate checks, then a configurable router",
                      validated_factory);
}

namespace {
// Registers the built-ins at start-up; the library is linked whole into the gateway and the tests.
[[maybe_unused]] const bool kRegistered = register_builtin_pipelines(route::PipelineRegistry::global()).ok();
}  // namespace

}  // namespace hypergate::strategies
