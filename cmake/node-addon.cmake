# film_add_node_addon(NAME SOURCES...): a Node-API module with cmake-js's headers, hidden symbols
# and an rpath that names only $ORIGIN and, when it is not a system folder, libtorch's lib folder.
function(film_add_node_addon name)
  add_library(${name} SHARED ${ARGN} ${CMAKE_JS_SRC})
  target_include_directories(${name} PRIVATE ${CMAKE_JS_INC})
  target_link_libraries(${name} PRIVATE ${CMAKE_JS_LIB})
  target_compile_features(${name} PRIVATE cxx_std_17)
  target_compile_definitions(${name} PRIVATE NAPI_VERSION=8 NAPI_CPP_EXCEPTIONS NODE_ADDON_API_DISABLE_DEPRECATED)
  set(rpath "$ORIGIN")
  if(FILM_TORCH_LIB_DIR AND NOT FILM_TORCH_LIB_DIR IN_LIST CMAKE_CXX_IMPLICIT_LINK_DIRECTORIES
     AND NOT FILM_TORCH_LIB_DIR MATCHES "^/usr/lib")
    list(APPEND rpath "${FILM_TORCH_LIB_DIR}")
  endif()
  set_target_properties(${name} PROPERTIES
    PREFIX "" SUFFIX ".node"
    CXX_VISIBILITY_PRESET hidden VISIBILITY_INLINES_HIDDEN ON
    BUILD_WITH_INSTALL_RPATH ON INSTALL_RPATH "${rpath}")
endfunction()
