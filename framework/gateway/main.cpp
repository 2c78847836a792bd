#include <cstdio>

#include "hypergate/core/clock.hpp"

int main() {
  std::printf("hypergate 0.1.0 (tsc: %s)\n", hypergate::TscClock::instance().uses_tsc() ? "yes" : "no");
  return 0;
}
