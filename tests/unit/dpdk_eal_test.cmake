# dpdk_eal_test reads the dpdk adapter's private header (adapters/dpdk/eal.hpp).
if(TARGET dpdk_eal_test)
  target_include_directories(dpdk_eal_test PRIVATE ${PROJECT_SOURCE_DIR}/adapters)
endif()
