#pragma once
// What both operator pages share (mf-edge's and mf-ingress's GET / on their
// admin listeners): one stylesheet for the body, headings, tables and the
// "not updated" status, and one script with the table-cell helper, the
// checked fetch and the once-a-second refresh loop. Each page adds its own
// rules and its own rendering.
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

// cell(): a table cell carrying data-field (tests read cells by it).
// fetchOk(): fetch without the cache; an HTTP error is thrown with its path.
// keepRefreshing(update): runs `update` (async, renders everything) now and
// again one second after each attempt; the element #status says when the
// page was last updated or why not, and <body data-refreshes> counts the
// updates that succeeded (what tests wait for). refreshNow() runs one update
// outside the loop (after an action).
inline constexpr std::string_view admin_page_script = R"js(
function cell(row, field, text, title) {
  const td = row.insertCell();
  td.dataset.field = field;
  td.textContent = text;
  if (title) td.title = title;
  return td;
}

async function fetchOk(path, options = {}) {
  const response = await fetch(path, {cache: 'no-store', ...options});
  if (!response.ok) throw new Error(path + ': HTTP ' + response.status);
  return response;
}

let refreshes = 0;
let pageUpdate = null;
async function refreshNow() {
  const status = document.getElementById('status');
  try {
    await pageUpdate();
    refreshes++;
    document.body.dataset.refreshes = String(refreshes);
    status.className = '';
    status.textContent = 'updated ' + new Date().toLocaleTimeString();
  } catch (error) {
    status.className = 'stale';
    status.textContent = 'not updated: ' + error.message;
  }
}

function keepRefreshing(update) {
  pageUpdate = update;
  const loop = async () => {
    await refreshNow();
    setTimeout(loop, 1000);
  };
  loop();
}
)js";

// The page: `before_style` (ending inside <style>), the shared rules, then
// `before_script` (the page's own rules, </style>, its body, ending inside
// <script type="module">), the shared script, then `page_script` (the
// page's own script, </script> and the rest).
inline std::string compose_admin_page(std::string_view before_style, std::string_view before_script,
                                      std::string_view page_script) {
  std::string page;
  page.reserve(before_style.size() + admin_page_style.size() + before_script.size() + admin_page_script.size() +
               page_script.size());
  page.append(before_style).append(admin_page_style).append(before_script).append(admin_page_script).append(page_script);
  return page;
}

}  // namespace mf
