# ctest install_and_find_package: installs this build to a scratch prefix, then configures,
# builds and runs examples/ as a separate project that finds convbp with find_package.
# -DBUILD_DIR=... -DSOURCE_DIR=... [-DCONFIG=...] [-DSANITIZE=ON: the consumer links the
# sanitizer runtimes too, as a sanitized static library needs]
set(prefix ${BUILD_DIR}/test-install)
set(consumer ${BUILD_DIR}/test-consumer)
file(REMOVE_RECURSE ${prefix} ${consumer})

function(step)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE status OUTPUT_VARIABLE out ERROR_VARIABLE out)
  if(NOT status EQUAL 0)
    message(FATAL_ERROR "failed (${status}): ${ARGN}\n${out}")
  endif()
  set(step_output "${out}" PARENT_SCOPE)
endfunction()

set(config_args "")
if(CONFIG)
  set(config_args --config ${CONFIG})
endif()
step(${CMAKE_COMMAND} --install ${BUILD_DIR} --prefix ${prefix} ${config_args})
set(sanitize_args "")
if(SANITIZE)
  set(sanitize_args "-DCMAKE_EXE_LINKER_FLAGS=-fsanitize=address,undefined")
endif()
step(${CMAKE_COMMAND} -S ${SOURCE_DIR}/examples -B ${consumer} -DCMAKE_PREFIX_PATH=${prefix}
     -DCMAKE_BUILD_TYPE=Release ${sanitize_args})
step(${CMAKE_COMMAND} --build ${consumer} ${config_args})
# No tuning: the run must not depend on timing, only on the installed library working.
step(${consumer}/convbp_example --db ${consumer}/tuning.json --on-miss default)
message("${step_output}")
if(NOT step_output MATCHES "default")
  message(FATAL_ERROR "the installed example did not report its default choice")
endif()
