# mold_session_test exercises the market-data codecs: link them by name (a pure library, not in HG_ADAPTER_LIBS).
if(TARGET mold_session_test)
  target_link_libraries(mold_session_test PRIVATE hypergate::adapters_protocols)
endif()
