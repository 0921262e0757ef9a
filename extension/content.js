// nightloop content script, 4 of 4: the service worker's messages, routed to the other three.
// The four files (observation.js, actions.js, recorder.js, content.js) load in that order into
// one isolated world and share `globalThis.nightloopPage`; each runs once however often it is
// injected (the manifest, then chrome.scripting where a page predates the extension). Their
// messages with the service worker are written down in protocol.js ("service worker ↔ content
// script"); the observation format is daemon/core/observation.py.

(() => {
  const page = globalThis.nightloopPage;
  if (page.routed) return;
  page.routed = true;
  const { act, layout, observe, setRecording } = page;

  chrome.runtime.onMessage.addListener((message, _sender, sendResponse) => {
    switch (message.type) {
      case "record":
        sendResponse({ ok: true, last: setRecording(message.on) });
        break;
      case "observe":
        try {
          sendResponse({ ok: true, observation: observe() });
        } catch (err) {
          sendResponse({ ok: false, error: `observation failed: ${err.message}` });
        }
        break;
      case "act":
        sendResponse(act(message.action, message.allow_submit !== false));
        break;
      case "layout":
        sendResponse({ ok: true, layout: layout(message.cover || []) });
        break;
      default:
        sendResponse({ ok: false, error: `unknown message type ${message.type}` });
    }
    return false;
  });
})();
