#pragma once
// The look both operator pages share (mf-edge's and mf-ingress's GET / on
// their admin listeners): one stylesheet for the body, headings, tables and
// the "not updated" status, which each page follows with its own rules.
#include <string>
#include <string_view>

namespace mf {

inline constexpr std::string_view admin_page_style = R"css(  body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5em; color: #1d2330; background: #f6f7f9; }
  h1 { font-size: 1.3em; margin: 0 0 .2em; }
  h2 { font-size: 1.05em; margin: 1.4em 0 .4em; }
  #status.stale { color: #b00020; font-weight: bold; }
  table { border-collapse: collapse; background: #fff; box-shadow: 0 1px 3px rgba(0,0,0,.12); min-width: 30em; }
  th, td { padding: .35em .8em; text-align: right; border-bottom: 1px solid #e3e6ea; }
  th { background: #2b3445; color: #fff; font-weight: 600; }
  th:first-child, td:first-child { text-align: left; }
)css";

// The page: `before_style` (ending inside <style>), the shared rules, then
// `after_style` (the page's own rules, </style> and the rest).
inline std::string compose_admin_page(std::string_view before_style, std::string_view after_style) {
  std::string page;
  page.reserve(before_style.size() + admin_page_style.size() + after_style.size());
  page.append(before_style).append(admin_page_style).append(after_style);
  return page;
}

}  // namespace mf
