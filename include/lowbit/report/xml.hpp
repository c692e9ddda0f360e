#pragma once
#include <string>
#include <string_view>

namespace lowbit::report {

// Text for XML / HTML content and attribute values: & < > " ' escaped.
std::string xml_escape(std::string_view text);

}  // namespace lowbit::report
