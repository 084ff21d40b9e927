// Temp folders of one test's own. ctest runs every test in a process of its own, two at a time
// (ctest -j2), and all of them share ::testing::TempDir(): a path that two tests both write,
// remove or read lets one test see, or delete, the other's files.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <string>

namespace convbp::test {

// TempDir()/AREA/SUITE.TEST for the running test (a parameterized name's '/' becomes '_'),
// created if missing. Call it from inside a test.
inline std::filesystem::path test_temp_dir(const std::string& area) {
  const ::testing::TestInfo* info = ::testing::UnitTest::GetInstance()->current_test_info();
  std::string test = info ? std::string(info->test_suite_name()) + "." + info->name() : "no_test";
  std::replace(test.begin(), test.end(), '/', '_');
  const std::filesystem::path dir = std::filesystem::path(::testing::TempDir()) / area / test;
  std::filesystem::create_directories(dir);
  return dir;
}

}  // namespace convbp::test
