# config_test also builds deployment plans, as `hypergate config check` does: link the gateway wiring.
target_link_libraries(config_test PRIVATE hypergate_gateway)
