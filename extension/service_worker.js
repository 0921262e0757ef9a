// nightloop service worker: the extension's link to the local daemon. It pairs with the daemon
// (connection.js), routes the daemon's observe/act requests to the right tab (tabs.js), records
// demonstrations (recording.js), keeps the state the popup shows (state.js) and carries out the
// popup's commands (here).

import { askNight, connect, repair, send } from "./connection.js";
import { DEFAULT_PORT, POPUP, isWebUrl, lastWebTab } from "./protocol.js";
import { fromContent, startRecording, stopRecording } from "./recording.js";
import { seenNight, setState, showBadge } from "./state.js";

// A token pasted in the popup lives in session storage: in memory, gone when the browser closes,
// out of reach of content scripts; never on disk in storage.local (where older versions kept it).
chrome.storage.local.remove(["port", "token"]);

let requestCounter = 0;

// -- the popup ----------------------------------------------------------------------------

async function fromPopup(message) {
  const requestId = `x${Date.now()}-${++requestCounter}`;
  switch (message.type) {
    case POPUP.RUN: {
      const tab = await lastWebTab();
      const task = { type: "task", task: message.task, source: "toolbar", request_id: requestId };
      if (message.url) task.url = message.url;
      if (message.allowSecret) task.allow_secret = true;
      if (tab && isWebUrl(tab.url)) task.tab_id = tab.id;
      await setState({ lastError: null, lastErrorCode: null });
      return send(task);
    }
    case POPUP.STOP:
      return send({ type: "stop", request_id: requestId });
    case POPUP.FEEDBACK: {
      const sent = send({
        type: "feedback", episode_id: message.episode_id, value: message.value, request_id: requestId,
      });
      if (sent) await setState({ feedback: { episode_id: message.episode_id, value: message.value } });
      return sent;
    }
    case POPUP.RECORD:
      return startRecording(message.task, requestId);
    case POPUP.RECORD_STOP:
      return stopRecording(Boolean(message.success), requestId);
    case POPUP.REPLAY: {
      const tab = await lastWebTab();
      await setState({ lastError: null });
      return send({
        type: "replay", episode_id: message.episode_id, fallback: "model", request_id: requestId,
        ...(tab ? { tab_id: tab.id } : {}), ...(message.task ? { task: message.task } : {}),
      });
    }
    case POPUP.FITS:
      return send({ type: "fits", task: message.task, request_id: requestId });
    case POPUP.PRACTICE: {
      const rule = { type: "practice", request_id: requestId };
      if (message.episode_id != null) rule.episode_id = message.episode_id;
      else rule.site = message.site;
      if (message.allowed != null) rule.allowed = message.allowed;
      return send(rule);
    }
    case POPUP.RESUME:
      return send({ type: "resume", episode_id: message.episode_id, request_id: requestId });
    case POPUP.APPROVE:
      await setState({ approval: null });
      await showBadge();
      return send({ type: "approval", request_id: message.request_id, verdict: message.verdict });
    case POPUP.NIGHT:
      return askNight();
    case POPUP.SECRETS:
      return send({ type: "secrets", request_id: requestId });
    case POPUP.NIGHT_SEEN:
      await seenNight(message.night_id);
      return true;
    case POPUP.UNDO:
      await setState({ lastError: null });
      return send({
        type: "adapter", change: "rollback", adapter_id: message.adapter_id, request_id: requestId,
      });
    case POPUP.PAIR:
      await chrome.storage.session.set({
        pasted: { port: Number(message.port) || DEFAULT_PORT, token: message.token },
      });
      repair();
      return true;
    default:
      throw new Error(`unknown popup message type ${message.type}`);
  }
}

chrome.runtime.onMessage.addListener((message, sender, sendResponse) => {
  if (sender.tab && sender.id === chrome.runtime.id && !sender.url.startsWith(chrome.runtime.getURL(""))) {
    fromContent(message, sender).then(sendResponse, (err) => sendResponse({ ok: false, error: err.message }));
    return true;   // our content script in a page: recording
  }
  // Only our own pages (the popup, also when opened in a tab) send commands.
  if (!sender.url || !sender.url.startsWith(chrome.runtime.getURL(""))) return false;
  fromPopup(message).then(
    (sent) => sendResponse({ ok: sent !== false, error: sent === false ? "not connected to the daemon" : undefined }),
    (err) => sendResponse({ ok: false, error: err.message }),
  );
  return true;   // the response is sent asynchronously
});

// -- staying connected --------------------------------------------------------------------

// Every half minute: reconnect if the link dropped, and ask what the last night did (a night
// run by the daemon's schedule or by `nightloop train` shows within the minute).
chrome.alarms.create("reconnect", { periodInMinutes: 0.5 });
chrome.alarms.onAlarm.addListener((alarm) => {
  if (alarm.name === "reconnect") connect().then(askNight);
});
chrome.runtime.onStartup.addListener(connect);
chrome.runtime.onInstalled.addListener(connect);
connect();
