# Project-wide compile flags: warnings, sanitizers. Applied through the hg_warnings interface target
# so that third-party code is not affected.
add_library(hg_warnings INTERFACE)
target_compile_options(hg_warnings INTERFACE -Wall -Wextra -Wpedantic -Wshadow -Wnon-virtual-dtor
                                             -Wno-missing-field-initializers)
if(HG_WERROR)
  target_compile_options(hg_warnings INTERFACE -Werror)
endif()

if(HG_SANITIZE)
  add_compile_options(-fsanitize=${HG_SANITIZE} -fno-omit-frame-pointer -fno-sanitize-recover=all)
  add_link_options(-fsanitize=${HG_SANITIZE})
  add_compile_definitions(HG_SANITIZED=1)
endif()

# Debug builds assert threading contracts (single writer, single consumer...).
add_compile_definitions($<$<CONFIG:Debug>:HG_DEBUG_CONTRACTS=1>)
