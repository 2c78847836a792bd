# fire_test loads a test-only plugin (a sink that never accepts) to force COLLISION answers.
add_library(hg_test_plugin_stuck_sink MODULE ${CMAKE_CURRENT_LIST_DIR}/fire_stuck_sink.cpp)
target_link_libraries(hg_test_plugin_stuck_sink PRIVATE hypergate::core hg_warnings)
target_link_options(hg_test_plugin_stuck_sink PRIVATE -Wl,--exclude-libs,ALL)
set_target_properties(hg_test_plugin_stuck_sink PROPERTIES CXX_VISIBILITY_PRESET hidden)
if(TARGET fire_test)
  add_dependencies(fire_test hg_test_plugin_stuck_sink)
  target_compile_definitions(fire_test PRIVATE HG_STUCK_SINK_PLUGIN="$<TARGET_FILE:hg_test_plugin_stuck_sink>")
endif()
