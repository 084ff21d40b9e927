# Writes OUTPUT: a C++ file defining convbp::kDefaultSuiteJson with the text of INPUT.
file(READ ${INPUT} text)
file(WRITE ${OUTPUT}
  "// Generated from configs/default.json by cmake/embed.cmake; do not edit.\n"
  "namespace convbp {\n"
  "extern const char* const kDefaultSuiteJson;\n"
  "const char* const kDefaultSuiteJson = R\"convbp_json(${text})convbp_json\";\n"
  "}  // namespace convbp\n")
