# The oneDNN CPU engine (native/onednn): built where oneDNN's headers are found (Debian: apt-get
# install libdnnl-dev), their version is one the engine supports (2.6 up to 3.x), and the engine
# can use the very oneDNN library libtorch loads. Otherwise, or with -DFILM_ONEDNN=OFF, the addon
# has the TorchScript path only, and configuring says why.
option(FILM_ONEDNN "Build the fused oneDNN CPU engine when oneDNN is found" ON)

# The oneDNN versions native/onednn/compat.h knows: 2.6 <= version < 4.
set(FILM_ONEDNN_MIN_VERSION 2.6)
set(FILM_ONEDNN_MAX_MAJOR 3)

# Reads DNNL_VERSION_{MAJOR,MINOR,PATCH} from the headers in `include_dir`.
function(_film_onednn_header_version include_dir out)
  file(STRINGS "${include_dir}/oneapi/dnnl/dnnl_version.h" lines REGEX "^#define DNNL_VERSION_(MAJOR|MINOR|PATCH) ")
  set(version "")
  foreach(part MAJOR MINOR PATCH)
    string(REGEX MATCH "DNNL_VERSION_${part} ([0-9]+)" _ "${lines}")
    list(APPEND version "${CMAKE_MATCH_1}")
  endforeach()
  list(JOIN version "." version)
  set(${out} "${version}" PARENT_SCOPE)
endfunction()

# What libtorch does with oneDNN, from libtorch_cpu's dynamic section (readelf):
#   ${out}_NEEDED  the libdnnl soname it links ("libdnnl.so.3.6"), or empty;
#   ${out}_EXPORTS TRUE when it exports oneDNN's C API itself (a static copy inside, as in
#                  pytorch.org's builds): another libdnnl in the process would then share its names;
#   ${out}_KNOWN   FALSE when that could not be read.
function(_film_torch_onednn out)
  set(${out}_NEEDED "" PARENT_SCOPE)
  set(${out}_EXPORTS FALSE PARENT_SCOPE)
  set(${out}_KNOWN FALSE PARENT_SCOPE)
  if(NOT FILM_TORCH_LIB_DIR)  # the core build: no libtorch to share oneDNN with
    return()
  endif()
  file(GLOB torch_cpu "${FILM_TORCH_LIB_DIR}/libtorch_cpu.so*")
  list(SORT torch_cpu)
  list(GET torch_cpu 0 torch_cpu)
  find_program(FILM_READELF NAMES readelf HINTS "${CMAKE_READELF}")
  if(NOT torch_cpu OR NOT FILM_READELF)
    return()
  endif()
  execute_process(COMMAND "${FILM_READELF}" -dW "${torch_cpu}" OUTPUT_VARIABLE dynamic RESULT_VARIABLE rc1 ERROR_QUIET)
  execute_process(COMMAND "${FILM_READELF}" --dyn-syms -W "${torch_cpu}" OUTPUT_VARIABLE symbols RESULT_VARIABLE rc2 ERROR_QUIET)
  if(NOT rc1 EQUAL 0 OR NOT rc2 EQUAL 0)
    return()
  endif()
  string(REGEX MATCH "\\(NEEDED\\)[^\n]*\\[(lib(dnnl|mkldnn)\\.so[^]]*)\\]" _ "${dynamic}")
  set(${out}_NEEDED "${CMAKE_MATCH_1}" PARENT_SCOPE)
  # A defined (not UND) global function named dnnl_primitive_create.
  if(symbols MATCHES "FUNC +GLOBAL +DEFAULT +[0-9]+ dnnl_primitive_create")
    set(${out}_EXPORTS TRUE PARENT_SCOPE)
  endif()
  set(${out}_KNOWN TRUE PARENT_SCOPE)
endfunction()

# Defines the imported target DNNL::dnnl for the oneDNN library the engine should link, or says
# why not (in FILM_ONEDNN_WHY_NOT) and defines nothing.
function(film_find_onednn)
  set(FILM_ONEDNN_WHY_NOT "" PARENT_SCOPE)
  find_path(FILM_DNNL_INCLUDE oneapi/dnnl/dnnl_version.h)
  if(NOT FILM_DNNL_INCLUDE)
    set(FILM_ONEDNN_WHY_NOT "oneDNN's headers were not found (apt-get install libdnnl-dev for the faster CPU engine)" PARENT_SCOPE)
    return()
  endif()
  _film_onednn_header_version("${FILM_DNNL_INCLUDE}" version)
  string(REGEX MATCH "^[0-9]+" major "${version}")
  if(version VERSION_LESS FILM_ONEDNN_MIN_VERSION OR major GREATER FILM_ONEDNN_MAX_MAJOR)
    set(FILM_ONEDNN_WHY_NOT "oneDNN ${version} (${FILM_DNNL_INCLUDE}) is not a version the engine supports (${FILM_ONEDNN_MIN_VERSION} up to ${FILM_ONEDNN_MAX_MAJOR}.x)" PARENT_SCOPE)
    return()
  endif()

  # The engine must call the same oneDNN as libtorch: two copies in one process share C symbol
  # names, and either library's calls could land in the other.
  _film_torch_onednn(torch)
  unset(FILM_DNNL_LIBRARY CACHE)  # looked up afresh: which file depends on the libtorch found
  if(torch_NEEDED)
    # Link the very file libtorch loads, by its soname (Debian 13: libdnnl.so.3.6 is oneDNN 3.7.2).
    find_library(FILM_DNNL_LIBRARY NAMES "${torch_NEEDED}" HINTS "${FILM_TORCH_LIB_DIR}")
    string(REGEX MATCH "\\.so\\.([0-9]+)" _ "${torch_NEEDED}")
    if(NOT FILM_DNNL_LIBRARY)
      set(FILM_ONEDNN_WHY_NOT "libtorch links ${torch_NEEDED}, which was not found" PARENT_SCOPE)
      return()
    endif()
    if(CMAKE_MATCH_1 AND NOT CMAKE_MATCH_1 EQUAL major)
      set(FILM_ONEDNN_WHY_NOT "libtorch links ${torch_NEEDED}, but the oneDNN headers found are ${version} (another major version)" PARENT_SCOPE)
      return()
    endif()
  elseif(torch_EXPORTS)
    set(FILM_ONEDNN_WHY_NOT "this libtorch carries its own oneDNN (it exports oneDNN's C API), so a second one cannot join it" PARENT_SCOPE)
    return()
  else()
    find_library(FILM_DNNL_LIBRARY NAMES dnnl)
    if(NOT FILM_DNNL_LIBRARY)
      set(FILM_ONEDNN_WHY_NOT "oneDNN's headers are there but libdnnl.so is not" PARENT_SCOPE)
      return()
    endif()
  endif()
  add_library(DNNL::dnnl SHARED IMPORTED GLOBAL)
  set_target_properties(DNNL::dnnl PROPERTIES
    IMPORTED_LOCATION "${FILM_DNNL_LIBRARY}" INTERFACE_INCLUDE_DIRECTORIES "${FILM_DNNL_INCLUDE}")
  if(torch_NEEDED)
    set(how "the library libtorch loads")
  elseif(torch_KNOWN)
    set(how "libtorch has no oneDNN of its own")
  else()
    set(how "could not read libtorch's links (no readelf)")
  endif()
  message(STATUS "film-features: oneDNN ${version} headers (${FILM_DNNL_INCLUDE}), library ${FILM_DNNL_LIBRARY} (${how})")
endfunction()

include("${CMAKE_CURRENT_LIST_DIR}/openmp.cmake")

# Adds the engine to `target` where it can be built; sets FILM_ONEDNN_FOUND.
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
    message(STATUS "film-features: no oneDNN engine: ${FILM_ONEDNN_WHY_NOT}. TorchScript path only.")
    return()
  endif()
  set(dir "${CMAKE_CURRENT_FUNCTION_LIST_DIR}/../native/onednn")
  set(sources "${dir}/engine.cc" "${dir}/film_net.cc" "${dir}/graph.cc" "${dir}/winograd.cc")
  target_sources(${target} PRIVATE ${sources})
  film_use_openmp(${target} ${sources})
  target_link_libraries(${target} PRIVATE DNNL::dnnl)
  target_compile_definitions(${target} PRIVATE FILM_WITH_ONEDNN)
  set(FILM_ONEDNN_FOUND ON PARENT_SCOPE)
endfunction()
