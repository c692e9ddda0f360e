#pragma once
// A small XML well-formedness check for the SVG the report writes: elements nest and close, every
// attribute is name="value" once per element, text and values hold only the five predefined
// entities or numeric references, and there is exactly one root element. Returns "" when the
// document is well-formed, else what is wrong and where.
#include <cctype>
#include <set>
#include <string>
#include <vector>

namespace lowbit::report::testing {

inline bool valid_entity(const std::string& s, size_t amp) {
  const size_t semi = s.find(';', amp);
  if (semi == std::string::npos || semi - amp > 10) return false;
  const std::string name = s.substr(amp + 1, semi - amp - 1);
  if (name == "amp" || name == "lt" || name == "gt" || name == "quot" || name == "apos") return true;
  if (name.size() >= 2 && name[0] == '#') {
    for (size_t i = 1; i < name.size(); ++i)
      if (!std::isdigit(static_cast<unsigned char>(name[i]))) return false;
    return true;
  }
  return false;
}

inline std::string xml_problem(const std::string& s) {
  std::vector<std::string> open;
  size_t roots = 0, i = 0;
  if (s.compare(0, 5, "<?xml") == 0) {
    i = s.find("?>");
    if (i == std::string::npos) return "unterminated XML declaration";
    i += 2;
  }
  while (i < s.size()) {
    if (s[i] != '<') {
      if (s[i] == '&' && !valid_entity(s, i)) return "bad entity at " + std::to_string(i);
      if (s[i] == '>') return "raw '>' in text at " + std::to_string(i);
      if (open.empty() && !std::isspace(static_cast<unsigned char>(s[i]))) return "text outside the root at " + std::to_string(i);
      ++i;
      continue;
    }
    if (s.compare(i, 4, "<!--") == 0) {
      const size_t end = s.find("-->", i);
      if (end == std::string::npos) return "unterminated comment";
      i = end + 3;
      continue;
    }
    const bool closing = s.compare(i, 2, "</") == 0;
    size_t j = i + (closing ? 2 : 1);
    const size_t name_start = j;
    while (j < s.size() && (std::isalnum(static_cast<unsigned char>(s[j])) || s[j] == '-' || s[j] == ':' || s[j] == '_')) ++j;
    const std::string name = s.substr(name_start, j - name_start);
    if (name.empty()) return "tag without a name at " + std::to_string(i);
    if (closing) {
      while (j < s.size() && std::isspace(static_cast<unsigned char>(s[j]))) ++j;
      if (j >= s.size() || s[j] != '>') return "bad closing tag </" + name;
      if (open.empty() || open.back() != name) return "</" + name + "> closes " + (open.empty() ? "nothing" : "<" + open.back() + ">");
      open.pop_back();
      i = j + 1;
      continue;
    }
    std::set<std::string> attributes;
    for (;;) {
      while (j < s.size() && std::isspace(static_cast<unsigned char>(s[j]))) ++j;
      if (j >= s.size()) return "unterminated <" + name;
      if (s[j] == '>' || s.compare(j, 2, "/>") == 0) break;
      const size_t a = j;
      while (j < s.size() && (std::isalnum(static_cast<unsigned char>(s[j])) || s[j] == '-' || s[j] == ':' || s[j] == '_')) ++j;
      const std::string attribute = s.substr(a, j - a);
      if (attribute.empty() || j + 1 >= s.size() || s[j] != '=' || (s[j + 1] != '"' && s[j + 1] != '\''))
        return "bad attribute in <" + name + "> at " + std::to_string(a);
      if (!attributes.insert(attribute).second) return "attribute " + attribute + " twice in <" + name + ">";
      const char quote = s[j + 1];
      const size_t end = s.find(quote, j + 2);
      if (end == std::string::npos) return "unterminated value of " + attribute;
      for (size_t k = j + 2; k < end; ++k) {
        if (s[k] == '<') return "'<' in the value of " + attribute;
        if (s[k] == '&' && !valid_entity(s, k)) return "bad entity in the value of " + attribute;
      }
      j = end + 1;
    }
    if (open.empty() && ++roots > 1) return "a second root element <" + name + ">";
    if (s[j] == '>') {
      open.push_back(name);
      i = j + 1;
    } else {
      i = j + 2;
    }
  }
  if (!open.empty()) return "<" + open.back() + "> never closed";
  if (roots != 1) return "no root element";
  return "";
}

}  // namespace lowbit::report::testing
