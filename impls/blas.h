// OpenBLAS's CBLAS interface (the include directory is OpenBLAS's own, found by CMake, so
// openblas_set_num_threads and openblas_get_config are declared).
#pragma once

#include <cblas.h>
