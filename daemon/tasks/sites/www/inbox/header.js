// The mail client's header on every page: its folders.
function inboxHeader() {
  return `<header><span class="brand">Postbox</span><a href="index.html">Inbox</a>
    <a href="index.html?folder=archive">Archived</a><a href="index.html?folder=sent">Sent</a></header>`;
}
