# Imports libtorch for the addon: finds it (locate-torch.cmake), then sets FILM_TORCH_LIB_DIR
# (where its shared libraries live, for the rpath) and FILM_TORCH_CUDA (a CUDA build or not).
include("${CMAKE_CURRENT_LIST_DIR}/locate-torch.cmake")
if(FILM_TORCH_DIR)
  set(Torch_DIR "${FILM_TORCH_DIR}" CACHE PATH "libtorch's CMake package" FORCE)
endif()
find_package(Torch CONFIG)
if(NOT Torch_FOUND)
  message(FATAL_ERROR
    "film-features needs libtorch and found none. Do one of:\n"
    "  - Debian/Ubuntu: apt-get install libtorch-dev\n"
    "  - set LIBTORCH to an unpacked libtorch folder, or Torch_DIR to the folder with TorchConfig.cmake\n"
    "  - pip install torch (its cmake_prefix_path is found through python3)")
endif()
message(STATUS "film-features: libtorch ${Torch_VERSION} from ${FILM_TORCH_SOURCE}: ${Torch_DIR}")

get_filename_component(FILM_TORCH_LIB_DIR "${TORCH_LIBRARY}" DIRECTORY)
set(FILM_TORCH_CUDA OFF)
if(TARGET torch_cuda OR TORCH_CUDA_LIBRARIES)
  set(FILM_TORCH_CUDA ON)
endif()
