// ITCH 5.0 is header-only on purpose (inlineable decode on the hot path). This translation unit pins
// the tables: it checks at compile time that the type -> size table matches PROTOCOLS.md §3.
#include "protocols/itch50.hpp"

namespace hypergate::protocols::itch {

static_assert(kMessageTypeCount == 23, "PROTOCOLS.md §3 lists 23 message types");
static_assert(message_size('S') == 12 && message_size('R') == 39 && message_size('H') == 25 &&
              message_size('Y') == 20 && message_size('L') == 26 && message_size('V') == 35 &&
              message_size('W') == 12 && message_size('K') == 28 && message_size('J') == 35 &&
              message_size('h') == 21 && message_size('A') == 36 && message_size('F') == 40 &&
              message_size('E') == 31 && message_size('C') == 36 && message_size('X') == 23 &&
              message_size('D') == 19 && message_size('U') == 35 && message_size('P') == 44 &&
              message_size('Q') == 40 && message_size('B') == 19 && message_size('I') == 50 &&
              message_size('N') == 20 && message_size('O') == 48,
              "sizes of PROTOCOLS.md §3");
static_assert(message_size('Z') == 0 && message_size('\0') == 0, "unknown types have no size");

}  // namespace hypergate::protocols::itch
