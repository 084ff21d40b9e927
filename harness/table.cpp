#include "table.h"

#include <algorithm>
#include <utility>

namespace convbp {

TextTable::TextTable(std::vector<Column> columns, std::string indent)
    : columns_(std::move(columns)), indent_(std::move(indent)) {}

void TextTable::add(std::vector<std::string> cells) { rows_.push_back(std::move(cells)); }

std::string TextTable::str() const {
  std::vector<std::size_t> width(columns_.size(), 0);
  for (std::size_t i = 0; i < columns_.size(); ++i) width[i] = columns_[i].min_width;
  for (const auto& row : rows_) {
    const std::size_t aligned = row.size() < columns_.size() ? row.size() - 1 : columns_.size();
    for (std::size_t i = 0; i < aligned; ++i) width[i] = std::max(width[i], row[i].size());
  }
  std::string out;
  for (const auto& row : rows_) {
    std::string line = indent_;
    const bool runs_on = row.size() < columns_.size();
    for (std::size_t i = 0; i < row.size() && i < columns_.size(); ++i) {
      const std::string& cell = row[i];
      const std::size_t w = runs_on && i + 1 == row.size() ? cell.size() : width[i];
      const std::string fill(w - std::min(w, cell.size()), ' ');
      const bool right = i < columns_.size() && columns_[i].align == Align::right;
      line += (i ? "  " : "") + (right ? fill + cell : cell + fill);
    }
    while (!line.empty() && line.back() == ' ') line.pop_back();
    out += line + "\n";
  }
  return out;
}

}  // namespace convbp
