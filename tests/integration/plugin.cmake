# Plugin tests (included by tests/CMakeLists.txt after the unit tests are defined).
#
#  1. Test-only broken plugins for plugin_test's failure modes: a wrong ABI version, a missing
#     registration symbol, a registration function that fails, a library without any plugin
#     symbol. plugin_test gets their paths and the
#     example plugin's (adapters/examples) as compile definitions.
#  2. plugin_out_of_tree (label "integration"): installs this build tree into a temporary prefix,
#     builds adapters/examples as a separate project against the installed package
#     (find_package(hypergate)), then runs plugin_test's end-to-end case on the resulting library.
foreach(variant wrong_abi missing_symbol failing not_a_plugin)
  add_library(hg_test_plugin_${variant} MODULE ${CMAKE_CURRENT_LIST_DIR}/plugin_${variant}.cpp)
  target_link_libraries(hg_test_plugin_${variant} PRIVATE hypergate::core hg_warnings)
  target_link_options(hg_test_plugin_${variant} PRIVATE -Wl,--exclude-libs,ALL)
  set_target_properties(hg_test_plugin_${variant} PROPERTIES CXX_VISIBILITY_PRESET hidden)
endforeach()

if(TARGET plugin_test)
  add_dependencies(plugin_test hypergate_example_plugin hg_test_plugin_wrong_abi hg_test_plugin_missing_symbol
                   hg_test_plugin_failing hg_test_plugin_not_a_plugin)
  target_compile_definitions(plugin_test PRIVATE
    HG_EXAMPLE_PLUGIN="$<TARGET_FILE:hypergate_example_plugin>"
    HG_WRONG_ABI_PLUGIN="$<TARGET_FILE:hg_test_plugin_wrong_abi>"
    HG_MISSING_SYMBOL_PLUGIN="$<TARGET_FILE:hg_test_plugin_missing_symbol>"
    HG_FAILING_PLUGIN="$<TARGET_FILE:hg_test_plugin_failing>"
    HG_NOT_A_PLUGIN="$<TARGET_FILE:hg_test_plugin_not_a_plugin>")

  set(hg_oot_flags "")
  if(HG_SANITIZE)
    set(hg_oot_flags "-fsanitize=${HG_SANITIZE} -fno-omit-frame-pointer")
  endif()
  add_test(NAME plugin_out_of_tree
    COMMAND ${CMAKE_COMMAND}
      -DBUILD_DIR=${PROJECT_BINARY_DIR}
      -DWORK_DIR=${CMAKE_CURRENT_BINARY_DIR}/plugin_out_of_tree
      -DPROJECT_DIR=${CMAKE_CURRENT_LIST_DIR}/out_of_tree
      -DEXAMPLES_DIR=${PROJECT_SOURCE_DIR}/adapters/examples
      -DGENERATOR=${CMAKE_GENERATOR}
      -DCXX_COMPILER=${CMAKE_CXX_COMPILER}
      -DEXTRA_FLAGS=${hg_oot_flags}
      -DCHECKER=$<TARGET_FILE:plugin_test>
      -P ${CMAKE_CURRENT_LIST_DIR}/out_of_tree/run.cmake)
  set_tests_properties(plugin_out_of_tree PROPERTIES LABELS integration TIMEOUT 300)
  add_dependencies(integration_tests plugin_test)
endif()

# cli_test drives `hypergate run --plugin` with the example plugin.
if(TARGET cli_test)
  add_dependencies(cli_test hypergate_example_plugin)
  target_compile_definitions(cli_test PRIVATE HG_EXAMPLE_PLUGIN="$<TARGET_FILE:hypergate_example_plugin>")
endif()
