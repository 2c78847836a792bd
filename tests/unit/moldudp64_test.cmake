# moldudp64_test exercises the market-data codecs: link them by name (a pure library, not in HG_ADAPTER_LIBS).
if(TARGET moldudp64_test)
  target_link_libraries(moldudp64_test PRIVATE hypergate::adapters_protocols)
endif()
