# market_data_test builds feeds and reference books in-process (the codecs) next to the real binary.
target_link_libraries(market_data_test PRIVATE hypergate_adapters_protocols)
