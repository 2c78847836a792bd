# dpdk_test drives the real binary and dpdk_helper (DPDK scenarios in their own process: one EAL per
# process), and reads captures with the pcap I/O library and the MoldUDP64 codec.
add_executable(dpdk_helper ${CMAKE_CURRENT_LIST_DIR}/dpdk_helper.cpp)
target_link_libraries(dpdk_helper PRIVATE hypergate_adapters_dpdk hypergate_adapters_pcap_io
                                          hypergate_adapters_protocols PkgConfig::DPDK hg_warnings)
if(TARGET dpdk_test)
  target_link_libraries(dpdk_test PRIVATE hypergate_adapters_pcap_io hypergate_adapters_protocols)
  add_dependencies(dpdk_test dpdk_helper)
  target_compile_definitions(dpdk_test PRIVATE HG_DPDK_HELPER="$<TARGET_FILE:dpdk_helper>")
endif()
