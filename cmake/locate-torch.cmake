# Finds libtorch's CMake package directory (the folder holding TorchConfig.cmake), in this order:
#   1. LIBTORCH (a libtorch root) or Torch_DIR, as CMake variables or environment variables;
#   2. a Python torch: torch.utils.cmake_prefix_path, from python3 on PATH, then /usr/bin/python3;
#   3. the system's CMake package (find_package's own search).
# Sets FILM_TORCH_DIR and FILM_TORCH_SOURCE; FILM_TORCH_DIR is empty when only step 3 is left.
# Also runs as a script (cmake -P cmake/locate-torch.cmake) so the install step asks the same question.

function(_film_torch_config_dir root out)
  foreach(candidate "${root}" "${root}/Torch" "${root}/share/cmake/Torch" "${root}/lib/cmake/Torch")
    if(EXISTS "${candidate}/TorchConfig.cmake")
      set(${out} "${candidate}" PARENT_SCOPE)
      return()
    endif()
  endforeach()
  set(${out} "" PARENT_SCOPE)
endfunction()

set(FILM_TORCH_DIR "")
set(FILM_TORCH_SOURCE "")

foreach(var LIBTORCH Torch_DIR)
  set(value "${${var}}")
  if(NOT value AND DEFINED ENV{${var}})
    set(value "$ENV{${var}}")
  endif()
  if(value AND NOT FILM_TORCH_DIR)
    _film_torch_config_dir("${value}" dir)
    if(NOT dir)
      message(FATAL_ERROR "${var}=${value} holds no TorchConfig.cmake (looked in it, Torch/, share/cmake/Torch/ and lib/cmake/Torch/)")
    endif()
    set(FILM_TORCH_DIR "${dir}")
    set(FILM_TORCH_SOURCE "${var}")
  endif()
endforeach()

if(NOT FILM_TORCH_DIR)
  find_program(_film_python3 python3)
  foreach(py ${_film_python3} /usr/bin/python3)
    if(FILM_TORCH_DIR OR NOT EXISTS "${py}")
      continue()
    endif()
    execute_process(
      COMMAND "${py}" -c "import torch.utils; print(torch.utils.cmake_prefix_path)"
      OUTPUT_VARIABLE prefix OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET RESULT_VARIABLE rc)
    if(rc EQUAL 0 AND prefix)
      _film_torch_config_dir("${prefix}" dir)
      if(dir)
        set(FILM_TORCH_DIR "${dir}")
        set(FILM_TORCH_SOURCE "python torch (${py})")
      endif()
    endif()
  endforeach()
endif()

if(NOT FILM_TORCH_DIR)
  foreach(root /usr/lib/x86_64-linux-gnu/cmake /usr/lib/aarch64-linux-gnu/cmake /usr/lib/cmake /usr/local/lib/cmake /usr/share/cmake /opt/libtorch)
    _film_torch_config_dir("${root}" dir)
    if(dir)
      set(FILM_TORCH_DIR "${dir}")
      set(FILM_TORCH_SOURCE "system")
      break()
    endif()
  endforeach()
endif()

if(CMAKE_SCRIPT_MODE_FILE STREQUAL CMAKE_CURRENT_LIST_FILE)
  if(FILM_TORCH_DIR)
    message(STATUS "libtorch: ${FILM_TORCH_DIR} (from ${FILM_TORCH_SOURCE})")
  else()
    message(FATAL_ERROR "libtorch: not found")
  endif()
endif()
