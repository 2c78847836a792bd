#pragma once
// The built-in pipelines, registered by name in route::PipelineRegistry::global() when the
// hypergate_builtin_pipelines library is linked (the gateway and the tests link it whole), or
// explicitly with register_builtin_pipelines().
//
// "passthrough"  PassthroughDecoder, no validators, no transforms, HashRouter.
//     key         = "payload" | "first_word" | "range" | "source"   (default "payload")
//     key_offset  = 0, key_length = 0                                (key = "range" only)
//     sinks       = []          sink names receiving everything (default: all sinks)
//
// "validated"    PassthroughDecoder -> SequenceCheck -> LengthBounds -> KeyFilter -> RateLimiter -> router
//     key, key_offset, key_length   as for "passthrough"
//     sequence       = true        per-source monotonicity: rejects "sequence_old", reports gaps
//     first_sequence = 0           first expected number (0: learn it from the first message)
//     min_length     = 0           payload bytes, inclusive   ("too_short")
//     max_length     = 65536       payload bytes, inclusive   ("too_long")
//     allow_keys     = []          when non-empty, only these keys pass ("key_not_allowed")
//     deny_keys      = []          these keys are rejected ("key_denied")
//     rate_limit     = 0.0         messages per second per key; 0 = off ("rate_limited")
//     rate_burst     = 0           bucket depth in messages; 0 = one second's worth (at least 1)
//     rate_table     = 4096        per-key buckets (see route/rate_limiter.hpp for a full table)
//     router         = "hash" | "round_robin" | "content" | "broadcast" | "failover"   (default "hash")
//       hash:        sinks = []          sink names receiving everything (default: all sinks)
//       round_robin: over = "lanes" | "sinks"   (default "lanes")
//       content:     rules = ["prefix:AAPL -> sink_a,sink_b", "type:A -> sink_c", "prefix:TEST -> drop"]
//                    default_route = "all" | "drop" | "sink_a,sink_b"   (default "all")
//                    first matching rule wins; "type:" takes one character or a number
//       broadcast:   (no options) every sink
//       failover:    primary = "sink_a", backup = "sink_b"   (required; uses the runtime's SinkHealth)
// Sequence checking runs first so that it sees every message of the feed: a message rejected later
// (too long, denied, over its rate) is not mistaken for a gap.
#include "hypergate/core/status.hpp"
#include "hypergate/route/registry.hpp"

namespace hypergate::strategies {

/// Adds "passthrough" and "validated" to `registry` (fails if either name is taken).
Result<void> register_builtin_pipelines(route::PipelineRegistry& registry);

}  // namespace hypergate::strategies
