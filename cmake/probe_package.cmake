# convbp_probe_package(NAME OK_VAR WHY_VAR)
#
# Whether `find_package(NAME)` loads, tried in a child CMake run so that a failure inside the
# package's own config file cannot end this configure. (Debian 12's oneDNN 2.6.3 calls
# find_package(OpenCL REQUIRED) from dnnl-config.cmake, which fails even under QUIET when the
# OpenCL headers are missing.) Sets OK_VAR to TRUE or FALSE and WHY_VAR to the child's first
# error line when it failed.
function(convbp_probe_package name ok_var why_var)
  set(dir ${CMAKE_BINARY_DIR}/CMakeFiles/convbp_probe_${name})
  file(REMOVE_RECURSE ${dir})
  file(WRITE ${dir}/CMakeLists.txt
       "cmake_minimum_required(VERSION ${CMAKE_MINIMUM_REQUIRED_VERSION})\n"
       "project(convbp_probe_${name} C CXX)\n"
       "find_package(${name} REQUIRED)\n")
  set(args -S ${dir} -B ${dir}/build)
  foreach(var CMAKE_PREFIX_PATH ${name}_DIR CMAKE_CXX_COMPILER)
    if(DEFINED ${var} AND NOT "${${var}}" STREQUAL "" AND NOT "${${var}}" MATCHES "-NOTFOUND$")
      list(APPEND args "-D${var}=${${var}}")
    endif()
  endforeach()
  execute_process(COMMAND ${CMAKE_COMMAND} ${args} RESULT_VARIABLE rc OUTPUT_QUIET
                  ERROR_VARIABLE err)
  if(rc EQUAL 0)
    set(${ok_var} TRUE PARENT_SCOPE)
    set(${why_var} "" PARENT_SCOPE)
    return()
  endif()
  # The first line of the first error message that says something ("Could NOT find OpenCL
  # (missing: ...)", "Could not find a package configuration file provided by ...").
  string(REPLACE "\n" ";" lines "${err}")
  set(why "")
  set(in_error FALSE)
  foreach(line IN LISTS lines)
    string(STRIP "${line}" line)
    if(line MATCHES "^CMake Error")
      set(in_error TRUE)
    elseif(in_error AND NOT line STREQUAL "")
      set(why "${line}")
      break()
    endif()
  endforeach()
  if(why STREQUAL "")
    set(why "the probe configure failed (exit ${rc})")
  endif()
  set(${ok_var} FALSE PARENT_SCOPE)
  set(${why_var} "${why}" PARENT_SCOPE)
endfunction()
