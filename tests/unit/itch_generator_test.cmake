# itch_generator_test exercises the market-data codecs: link them by name (a pure library, not in HG_ADAPTER_LIBS).
if(TARGET itch_generator_test)
  target_link_libraries(itch_generator_test PRIVATE hypergate::adapters_protocols)
endif()
