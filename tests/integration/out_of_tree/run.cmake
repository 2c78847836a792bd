# cmake -P driver for the plugin_out_of_tree test (see tests/integration/plugin.cmake):
#   install BUILD_DIR into WORK_DIR/prefix -> configure + build PROJECT_DIR against it ->
#   run CHECKER (plugin_test) on the built plugin with HG_PLUGIN_UNDER_TEST set.
foreach(var BUILD_DIR WORK_DIR PROJECT_DIR EXAMPLES_DIR GENERATOR CHECKER)
  if(NOT DEFINED ${var})
    message(FATAL_ERROR "run.cmake: -D${var}=... is required")
  endif()
endforeach()

file(REMOVE_RECURSE ${WORK_DIR})
file(MAKE_DIRECTORY ${WORK_DIR})

function(step name)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "out-of-tree ${name} failed (${rc}):\n${out}\n${err}")
  endif()
  message(STATUS "out-of-tree ${name}: ok")
endfunction()

step(install ${CMAKE_COMMAND} --install ${BUILD_DIR} --prefix ${WORK_DIR}/prefix)
step(configure ${CMAKE_COMMAND} -S ${PROJECT_DIR} -B ${WORK_DIR}/build -G ${GENERATOR}
     -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_COMPILER=${CXX_COMPILER}
     -DCMAKE_PREFIX_PATH=${WORK_DIR}/prefix -DHG_EXAMPLES_DIR=${EXAMPLES_DIR}
     "-DCMAKE_CXX_FLAGS=${EXTRA_FLAGS}" "-DCMAKE_MODULE_LINKER_FLAGS=${EXTRA_FLAGS}")
step(build ${CMAKE_COMMAND} --build ${WORK_DIR}/build)

file(GLOB_RECURSE plugin ${WORK_DIR}/build/*hypergate_example_plugin.so)
if(NOT plugin)
  message(FATAL_ERROR "out-of-tree build produced no hypergate_example_plugin .so")
endif()
list(GET plugin 0 plugin)
# The installed package must be the one used, not this source tree's headers.
file(READ ${WORK_DIR}/build/CMakeCache.txt cache)
if(NOT cache MATCHES "hypergate_DIR:PATH=${WORK_DIR}/prefix")
  message(FATAL_ERROR "the out-of-tree project did not resolve hypergate from ${WORK_DIR}/prefix")
endif()
execute_process(COMMAND ${CMAKE_COMMAND} -E env HG_PLUGIN_UNDER_TEST=${plugin} ${CHECKER}
                        --gtest_filter=PluginEndToEnd.*
                RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
# A filter that matched nothing would also exit 0: require the one end-to-end test to have passed.
if(NOT rc EQUAL 0 OR NOT out MATCHES "\\[  PASSED  \\] 1 test")
  message(FATAL_ERROR "out-of-tree check on ${plugin} failed (${rc}):\n${out}\n${err}")
endif()
message(STATUS "out-of-tree check: ok (${plugin})")
