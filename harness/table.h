// The text tables convbp prints (winners, results, validation, tune): one renderer, so that every
// table aligns and trims the same way.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

namespace convbp {

// Cells in columns two spaces apart, each column as wide as its widest cell (or its min_width),
// left- or right-aligned; the blanks at the end of a line are trimmed.
class TextTable {
 public:
  enum class Align { left, right };
  struct Column {
    Align align = Align::left;
    std::size_t min_width = 0;
  };
  // `indent` starts every line.
  explicit TextTable(std::vector<Column> columns, std::string indent = "");
  // A row. One with fewer cells than columns stops early: its last cell runs on from where it
  // starts, unaligned and not widening its column (a reason after a status, where the other
  // rows hold numbers).
  void add(std::vector<std::string> cells);
  std::string str() const;

 private:
  std::vector<Column> columns_;
  std::string indent_;
  std::vector<std::vector<std::string>> rows_;
};

}  // namespace convbp
