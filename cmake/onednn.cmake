# The oneDNN CPU engine (native/onednn): built where oneDNN is found (Debian: apt-get install
# libdnnl-dev). Without it, or with -DFILM_ONEDNN=OFF, the addon has the TorchScript path only.
option(FILM_ONEDNN "Build the fused oneDNN CPU engine when oneDNN is found" ON)

# Defines the imported target DNNL::dnnl, or nothing. Debian's CMake package `dnnl` is built with
# an OpenCL GPU runtime, and finding it fails hard without OpenCL's dev files (ocl-icd-opencl-dev,
# only recommended by libdnnl-dev). The CPU engine needs none of that, so without OpenCL the
# header and library are looked up directly.
function(film_find_onednn)
  find_package(OpenCL QUIET)
  if(OpenCL_FOUND)
    find_package(dnnl CONFIG QUIET)
    if(dnnl_FOUND)
      message(STATUS "film-features: oneDNN ${dnnl_VERSION} (CMake package: ${dnnl_DIR})")
      return()
    endif()
  endif()
  find_path(FILM_DNNL_INCLUDE oneapi/dnnl/dnnl.hpp)
  find_library(FILM_DNNL_LIBRARY NAMES dnnl)
  if(FILM_DNNL_INCLUDE AND FILM_DNNL_LIBRARY)
    add_library(DNNL::dnnl SHARED IMPORTED GLOBAL)
    set_target_properties(DNNL::dnnl PROPERTIES
      IMPORTED_LOCATION "${FILM_DNNL_LIBRARY}" INTERFACE_INCLUDE_DIRECTORIES "${FILM_DNNL_INCLUDE}")
    message(STATUS "film-features: oneDNN ${FILM_DNNL_LIBRARY} (no OpenCL dev files, so not through its CMake package)")
  endif()
endfunction()

# Adds the engine to `target` where oneDNN is found; sets FILM_ONEDNN_FOUND.
function(film_use_onednn target)
  set(FILM_ONEDNN_FOUND OFF PARENT_SCOPE)
  if(NOT FILM_ONEDNN)
    message(STATUS "film-features: oneDNN engine off (FILM_ONEDNN=OFF): TorchScript path only")
    return()
  endif()
  if(NOT TARGET DNNL::dnnl)
    film_find_onednn()
  endif()
  if(NOT TARGET DNNL::dnnl)
    message(STATUS "film-features: oneDNN not found: TorchScript path only (apt-get install libdnnl-dev for the faster CPU engine)")
    return()
  endif()
  set(dir "${CMAKE_CURRENT_FUNCTION_LIST_DIR}/../native/onednn")
  target_sources(${target} PRIVATE "${dir}/engine.cc" "${dir}/graph.cc" "${dir}/weights.cc")
  target_link_libraries(${target} PRIVATE DNNL::dnnl)
  target_compile_definitions(${target} PRIVATE FILM_WITH_ONEDNN)
  set(FILM_ONEDNN_FOUND ON PARENT_SCOPE)
endfunction()
