# `cmake --install` exports a CMake package: find_package(hypergate) then link hypergate::core.
include(CMakePackageConfigHelpers)
install(EXPORT hypergate-targets NAMESPACE hypergate:: FILE hypergate-targets.cmake
        DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/hypergate)
configure_package_config_file(${CMAKE_CURRENT_SOURCE_DIR}/framework/cmake/hypergate-config.cmake.in
  ${CMAKE_CURRENT_BINARY_DIR}/hypergate-config.cmake
  INSTALL_DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/hypergate)
write_basic_package_version_file(${CMAKE_CURRENT_BINARY_DIR}/hypergate-config-version.cmake
  COMPATIBILITY SameMinorVersion)
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/hypergate-config.cmake
              ${CMAKE_CURRENT_BINARY_DIR}/hypergate-config-version.cmake
        DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/hypergate)
