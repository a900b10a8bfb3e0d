# The core's files run their loops on OpenMP threads, the runtime oneDNN uses. libtorch's files are
# built without it, so that ATen's headers mean there what libtorch was built with.
find_package(OpenMP REQUIRED COMPONENTS CXX)
function(film_use_openmp target)
  separate_arguments(openmp_flags UNIX_COMMAND "${OpenMP_CXX_FLAGS}")
  set_source_files_properties(${ARGN} PROPERTIES COMPILE_OPTIONS "${openmp_flags}")
  target_link_libraries(${target} PRIVATE ${OpenMP_CXX_LIBRARIES})
endfunction()
