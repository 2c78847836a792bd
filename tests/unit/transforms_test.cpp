// Transforms: FieldNormaliser (in place and through the scratch arena) and ScratchArena itself.
#include <gtest/gtest.h>

#include <cctype>
#include <string>
#include <vector>

#include "hypergate/route/field_normaliser.hpp"
#include "hypergate/route/passthrough_decoder.hpp"
#include "hypergate/route/pipeline.hpp"
#include "hypergate/route/scratch_arena.hpp"
#include "routing/hash_router.hpp"

namespace hypergate::route {
namespace {

TEST(ScratchArena, BumpsAlignsExhaustsAndResets) {
  ScratchArena a(256);
  std::byte* p1 = a.allocate(3, 1);
  std::byte* p2 = a.allocate(8, 8);
  ASSERT_NE(p1, nullptr);
  ASSERT_NE(p2, nullptr);
  EXPECT_EQ(reinterpret_cast<std::uintptr_t>(p2) % 8, 0u);
  EXPECT_GE(p2, p1 + 3);
  EXPECT_EQ(a.used(), 16u);
  EXPECT_EQ(a.allocate(241, 1), nullptr) << "does not fit: nullptr, nothing changes";
  EXPECT_EQ(a.used(), 16u);
  EXPECT_NE(a.allocate(240, 1), nullptr);
  EXPECT_EQ(a.available(), 0u);
  EXPECT_EQ(a.allocate(1, 1), nullptr);
  a.reset();
  EXPECT_EQ(a.used(), 0u);
  EXPECT_EQ(a.allocate(1, 1), p1) << "reset reuses the same memory";
  const std::string_view c = a.copy("hello");
  EXPECT_EQ(c, "hello");
  ScratchArena empty(0);
  EXPECT_EQ(empty.allocate(1, 1), nullptr);
  EXPECT_EQ(empty.copy("x").data(), nullptr);
}

/// In place: derive the message type from the first payload byte and trim trailing blanks.
struct TypeAndTrim {
  bool operator()(Message& m) noexcept {
    std::string_view t = m.text();
    while (!t.empty() && (t.back() == ' ' || t.back() == '\r')) t.remove_suffix(1);
    m.size = static_cast<std::uint32_t>(t.size());
    m.type = t.empty() ? 0 : static_cast<unsigned char>(t[0]);
    return true;
  }
};

/// Through the arena: upper-case the key (the payload is the source's memory and must not change).
struct UpperKey {
  bool operator()(Message& m, ScratchArena& arena) noexcept {
    std::byte* out = arena.allocate(m.key_size, 1);
    if (out == nullptr) return false;
    auto* chars = reinterpret_cast<char*>(out);
    for (std::size_t i = 0; i < m.key_size; ++i) {
      chars[i] = static_cast<char>(std::toupper(static_cast<unsigned char>(m.key_data[i])));
    }
    m.set_key({chars, m.key_size});
    ++calls;
    return true;
  }
  int calls = 0;
};
static_assert(Transform<FieldNormaliser<UpperKey>> && Transform<FieldNormaliser<TypeAndTrim>>);

struct NotNoexcept {
  bool operator()(Message&) { return true; }
};
static_assert(!NormaliseFunctor<NotNoexcept>, "the hook must be noexcept: it runs on the hot path");

class Keep final : public Downstream {
 public:
  void deliver(std::span<const Message> messages, std::span<const Route>) noexcept override {
    for (const Message& m : messages) {
      keys.emplace_back(m.key());  // copy now: arena memory is reused after process() returns
      payloads.emplace_back(m.text());
      types.push_back(m.type);
    }
  }
  std::vector<std::string> keys, payloads;
  std::vector<std::uint16_t> types;
};

TEST(FieldNormaliser, RewritesInPlaceAndThroughTheArena) {
  auto p = make_pipeline("norm", PassthroughDecoder(PassthroughDecoder::KeyMode::FirstWord), Validators<>{},
                         Transforms{FieldNormaliser<TypeAndTrim>{}, FieldNormaliser<UpperKey>{}},
                         strategies::HashRouter(32), 1024);
  std::string a = "aapl buy 100  \r";
  std::string b = "msft sell 5";
  Burst<> in;
  in.emplace_back().set_payload(a.data(), a.size());
  in.emplace_back().set_payload(b.data(), b.size());
  Keep down;
  Emitter out(down);
  p->process(in, out);
  EXPECT_EQ(down.keys, (std::vector<std::string>{"AAPL", "MSFT"}));
  EXPECT_EQ(down.payloads, (std::vector<std::string>{"aapl buy 100", "msft sell 5"}));
  EXPECT_EQ(down.types, (std::vector<std::uint16_t>{'a', 'm'}));
  EXPECT_EQ(a, "aapl buy 100  \r") << "the source's bytes are untouched";
  EXPECT_EQ(p->transform<1>().functor().calls, 2);
  EXPECT_EQ(p->arena().used(), 0u) << "the arena is reset after each burst";
}

TEST(FieldNormaliser, ArenaExhaustionIsACountedReject) {
  auto p = make_pipeline("norm", PassthroughDecoder(), Validators<>{}, Transforms{FieldNormaliser<UpperKey>{}},
                         strategies::HashRouter(32), 10);  // room for 10 key bytes per burst
  std::vector<std::string> keys = {"abcd", "efgh", "ijkl", "mn"};
  Burst<> in;
  for (auto& k : keys) in.emplace_back().set_payload(k.data(), k.size());
  Keep down;
  Emitter out(down);
  p->process(in, out);
  EXPECT_EQ(down.keys, (std::vector<std::string>{"ABCD", "EFGH", "MN"}));
  EXPECT_EQ(p->rejects("normalise_failed"), 1u);
  // The next burst has the whole arena again.
  down.keys.clear();
  p->process(in, out);
  EXPECT_EQ(down.keys.size(), 3u);
  EXPECT_EQ(p->counters().rejected, 2u);
}

}  // namespace
}  // namespace hypergate::route
