// What the mail client's pages share: the header with its folders, and opening one message.
function inboxHeader() {
  return `<header><span class="brand">Postbox</span><a href="index.html">Inbox</a>
    <a href="index.html?folder=archive">Archived</a><a href="index.html?folder=sent">Sent</a></header>`;
}

/** The inbox's state and the message the URL names (?m=id); when there is none, the page says
 * so, is marked ready and `message` is null. */
async function openMessage() {
  const { world, state } = await Site.open("inbox");
  const message = world.messages.find((m) => m.id === new URLSearchParams(location.search).get("m"));
  const app = document.getElementById("app");
  if (!message) {
    app.innerHTML = `${inboxHeader()}<main><h1>No such message</h1></main>`;
    Site.ready();
  }
  return { state, message: message || null, app };
}
