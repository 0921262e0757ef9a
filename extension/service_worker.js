// nightloop service worker: the extension's WebSocket link to the local daemon.
// It pairs with the daemon, routes the daemon's observe/act requests to the right tab, and
// keeps the state the popup shows in chrome.storage.session (the worker itself may be stopped
// and restarted by Chrome at any time, so it keeps nothing important in globals).

import { guardNetwork } from "./network_guard.js";
import { MAIN_WORLD_PROBES } from "./probes.js";
import { AGENT, DEFAULT_PORT, POPUP, PROTOCOL_VERSION, isWebUrl, lastWebTab } from "./protocol.js";
import { screenshot } from "./screenshots.js";

const MAX_BACKOFF_MS = 30_000;
const KEEPALIVE_MS = 20_000;     // a message every 20 s keeps an MV3 worker (and the socket) alive
const LOAD_TIMEOUT_MS = 15_000;
const NAV_GRACE_MS = 40;         // a navigation caused by an action has started by then
const BACK_TIMEOUT_MS = 2_000;   // history.back() with no history does nothing: stop waiting

let socket = null;
let backoffMs = 500;
let reconnectTimer = null;
let keepaliveTimer = null;
let requestCounter = 0;
let opening = null;              // the connect() in progress, so that callers share it

// -- state the popup renders --------------------------------------------------------------

async function setState(patch) {
  await chrome.storage.session.set(patch);
}

async function onEpisode(episode, notice = null) {
  const { episode: current, recordTab } = await chrome.storage.session.get(["episode", "recordTab"]);
  const patch = { episode, notice };
  if (!current || current.id !== episode.id) patch.steps = [];
  if (episode.source === "demonstration" && episode.status === "running" && recordTab != null) {
    // the daemon opened the demonstration we asked for: the tab records from now on
    patch.recording = { episode_id: episode.id, tab_id: recordTab };
    patch.recordTab = null;
    await setState(patch);
    await toContent(recordTab, { type: "record", on: true });
    return;
  }
  await setState(patch);
}

async function onStep(episodeId, step) {
  const { episode, steps = [] } = await chrome.storage.session.get(["episode", "steps"]);
  if (episode && episode.id !== episodeId) return;
  await setState({ steps: [...steps.filter((s) => s.index !== step.index), step] });
}

/** The daemon's word on one practice rule: kept per site (and per episode for a task). */
async function onPractice(rule) {
  const { practice = {} } = await chrome.storage.session.get("practice");
  const key = rule.episode_id != null ? `episode:${rule.episode_id}` : `site:${rule.site}`;
  await setState({ practice: { ...practice, [key]: rule.allowed } });
}

// -- the connection -----------------------------------------------------------------------

// A token pasted in the popup lives in session storage: in memory, gone when the browser closes,
// out of reach of content scripts; never on disk in storage.local (where older versions kept it).
chrome.storage.local.remove(["port", "token"]);

async function pairing() {
  const { pasted } = await chrome.storage.session.get("pasted");
  if (pasted?.token) return { port: pasted.port || DEFAULT_PORT, token: pasted.token };
  try {
    const response = await fetch(chrome.runtime.getURL("pairing.json"));
    if (response.ok) return await response.json();
  } catch {
    // no pairing.json: the user pairs from the popup
  }
  return null;
}

function send(message) {
  if (!socket || socket.readyState !== WebSocket.OPEN) return false;
  socket.send(JSON.stringify(message));
  return true;
}

function connect() {
  opening = opening || open().finally(() => { opening = null; });
  return opening;
}

async function open() {
  if (socket && socket.readyState <= WebSocket.OPEN) return;   // CONNECTING or OPEN
  clearTimeout(reconnectTimer);
  const pair = await pairing();
  if (!pair) {
    await setState({ connection: "unpaired" });
    return;
  }
  await setState({ connection: "connecting", address: `127.0.0.1:${pair.port}` });
  const ws = new WebSocket(`ws://127.0.0.1:${pair.port}/`);
  socket = ws;
  ws.onopen = () => send({
    type: "hello", protocol: PROTOCOL_VERSION, token: pair.token, client: "extension", agent: AGENT,
  });
  ws.onmessage = (event) => {
    let message;
    try {
      message = JSON.parse(event.data);
    } catch {
      console.warn("nightloop: daemon sent a frame that is not JSON");
      return;
    }
    onDaemonMessage(message).catch((err) => console.error("nightloop:", err));
  };
  ws.onclose = (event) => {
    if (socket !== ws) return;   // a socket we already replaced
    socket = null;
    clearInterval(keepaliveTimer);
    const refused = event.code === 1008;
    setState({
      connection: refused ? "refused" : "disconnected",
      ...(refused ? { lastError: event.reason } : {}),
    });
    reconnectTimer = setTimeout(connect, backoffMs);
    backoffMs = Math.min(backoffMs * 2, MAX_BACKOFF_MS);
  };
}

/** A sensitive action waits for the user: the popup shows it (a badge says so while closed)
 * until they answer or its time is up, when the daemon denies it. */
async function onApprovalAsk(ask) {
  await setState({ approval: { ...ask, until: Date.now() + ask.timeout * 1000 } });
  await chrome.action.setBadgeText({ text: "?" });
  setTimeout(async () => {
    const { approval } = await chrome.storage.session.get("approval");
    if (approval?.request_id !== ask.request_id) return;
    await setState({ approval: null });
    await chrome.action.setBadgeText({ text: "" });
  }, ask.timeout * 1000);
}

async function onDaemonMessage(message) {
  switch (message.type) {
    case "welcome":
      backoffMs = 500;
      clearInterval(keepaliveTimer);
      keepaliveTimer = setInterval(() => send({ type: "ping" }), KEEPALIVE_MS);
      await setState({ connection: "connected", lastError: null, daemon: message.daemon });
      if (message.episode) await onEpisode(message.episode);
      break;
    case "observe":
      send(await observe(message));
      break;
    case "act":
      send(await act(message));
      break;
    case "probe":
      send(await probe(message));
      break;
    case "episode":
      await onEpisode(message.episode, message.notice || null);
      break;
    case "step":
      await onStep(message.episode_id, message.step);
      break;
    case "approval_ask":
      await onApprovalAsk(message);
      break;
    case "error":
      await setState({ lastError: message.message });
      break;
    case "practice":
      await onPractice(message);
      break;
    case "fits":
      await setState({ fits: message });
      break;
    case "pong":
    case "status":
      break;
    default:
      console.warn("nightloop: unknown message type from the daemon:", message.type);
  }
}

// -- tabs ---------------------------------------------------------------------------------

// Main-frame navigations per tab, so that an action that navigates is only answered once the
// new page has loaded, and one that does not is answered at once.
const navigations = new Map();   // tabId → {started: ms, done: boolean}
chrome.webNavigation.onBeforeNavigate.addListener(({ tabId, frameId }) => {
  if (frameId === 0) navigations.set(tabId, { started: Date.now(), done: false });
});
for (const event of [chrome.webNavigation.onCompleted, chrome.webNavigation.onErrorOccurred]) {
  event.addListener(({ tabId, frameId }) => {
    const nav = navigations.get(tabId);
    if (frameId === 0 && nav) nav.done = true;
  });
}

/** Poll until `predicate()` holds or `timeoutMs` passes. */
async function until(predicate, timeoutMs) {
  const deadline = Date.now() + timeoutMs;
  while (!predicate() && Date.now() < deadline) await sleep(20);
}

/** After an action begun at `since`: if it started a navigation, wait for that page to load.
 * `expectMs`: how long to wait for a navigation that must come (goto, go_back) to start.
 * Resolves to whether a navigation happened. */
async function settle(tabId, since, expectMs = 0) {
  await sleep(NAV_GRACE_MS);
  const started = () => (navigations.get(tabId)?.started ?? 0) >= since;
  if (expectMs) await until(started, expectMs);
  if (!started()) return false;
  await until(() => navigations.get(tabId).done, LOAD_TIMEOUT_MS);
  return true;
}

/** Resolve when the tab's current document has finished loading (or after LOAD_TIMEOUT_MS). */
async function waitForLoad(tabId) {
  const deadline = Date.now() + LOAD_TIMEOUT_MS;
  while (Date.now() < deadline && (await chrome.tabs.get(tabId)).status !== "complete") {
    await sleep(30);
  }
}

async function agentTab(tabId) {
  if (tabId != null) {
    await chrome.tabs.get(tabId);   // throws "No tab with id" when it was closed
    return tabId;
  }
  const tab = await lastWebTab();
  if (!tab) throw new Error("no web page is open; give a URL or open a page first");
  return tab.id;
}

/** Send a message to the tab's content script, injecting it first where it is missing. */
async function toContent(tabId, message) {
  try {
    return await chrome.tabs.sendMessage(tabId, message, { frameId: 0 });
  } catch {
    // Pages loaded before the extension have no content script yet.
    await chrome.scripting.executeScript({ target: { tabId }, files: ["content.js"] });
    return await chrome.tabs.sendMessage(tabId, message, { frameId: 0 });
  }
}

/** @param {{request_id: string, tab_id?: number}} request */
async function observe(request) {
  const reply = { type: "observation", request_id: request.request_id };
  try {
    const tabId = await agentTab(request.tab_id);
    reply.tab_id = tabId;
    await waitForLoad(tabId);
    try {
      const response = await toContent(tabId, { type: "observe" });
      if (!response || !response.ok) throw new Error(response ? response.error : "no response");
      reply.observation = response.observation;
    } catch (err) {
      // No script runs on the browser's own error page: describe it, so the agent can go on.
      if (!/error page/.test(err.message)) throw err;
      const tab = await chrome.tabs.get(tabId);
      reply.observation = {
        url: tab.url, title: tab.title || "Error", elements: [], omitted_elements: 0, omitted_text: 0,
        text: "This page could not be loaded: the browser shows its error page. Use go_back or goto.",
      };
    }
  } catch (err) {
    reply.error = err.message || String(err);
  }
  return reply;
}

/** @param {{request_id: string, tab_id?: number, action: object}} request */
async function act(request) {
  const { action } = request;
  const reply = { type: "action_result", request_id: request.request_id, ok: false };
  const since = Date.now();
  try {
    let tabId;
    if (action.action === "goto") {
      if (!isWebUrl(action.url)) throw new Error(`cannot open ${action.url}: not an http(s) or file URL`);
      if (request.tab_id == null) {
        tabId = (await chrome.tabs.create({ url: action.url, active: true })).id;
      } else {
        tabId = await agentTab(request.tab_id);
        await chrome.tabs.update(tabId, { url: action.url });
      }
      await settle(tabId, since, LOAD_TIMEOUT_MS);
      reply.ok = true;
    } else if (action.action === "go_back") {
      // The page's own history.back(): chrome.tabs.goBack skips entries made without a user
      // gesture, which is every entry the agent makes.
      tabId = await agentTab(request.tab_id);
      try {
        await chrome.scripting.executeScript({ target: { tabId }, func: () => history.back() });
      } catch {
        await chrome.tabs.goBack(tabId);   // an error page runs no script
      }
      reply.ok = await settle(tabId, since, BACK_TIMEOUT_MS);
      if (!reply.ok) reply.error = "there is no previous page in this tab's history";
    } else {
      tabId = await agentTab(request.tab_id);
      const response = await toContent(tabId, { type: "act", action, allow_submit: request.allow_submit !== false });
      reply.ok = Boolean(response && response.ok);
      if (!reply.ok) reply.error = response ? response.error : "the page did not answer";
      if (response && response.detail) reply.detail = response.detail;
      await settle(tabId, since);
    }
    reply.tab_id = tabId;
    const tab = await chrome.tabs.get(tabId);
    reply.detail = { ...(reply.detail || {}), url: tab.url };
  } catch (err) {
    reply.ok = false;
    reply.error = err.message || String(err);
  }
  return reply;
}

/** The content script's layout of the tab (content.js `layout`), null when it has none. */
async function layoutOf(tabId, cover) {
  const response = await toContent(tabId, { type: "layout", cover });
  return response && response.ok ? response.layout : null;
}

/** Run a named probe: the browser-wide network guard (no tab), or one in a tab.
 * @param {{request_id: string, tab_id?: number, probe: string, args?: object}} request */
async function probe(request) {
  const reply = { type: "probe_result", request_id: request.request_id, tab_id: request.tab_id, ok: false };
  try {
    reply.result = request.probe === "network.guard"
      ? await guardNetwork(request.args?.sites)
      : await tabProbe(await agentTab(request.tab_id), request.probe, request.args || {});
    reply.ok = !(reply.result && reply.result.error);
    if (!reply.ok) reply.error = reply.result.error;
  } catch (err) {
    reply.error = err.message || String(err);
  }
  return reply;
}

/** A tab probe (close, screenshot) or a main-world function from probes.js. */
async function tabProbe(tabId, name, args) {
  if (name === "tab.close") {
    await chrome.tabs.remove(tabId);
    return {};
  }
  if (name === "tab.screenshot") return await screenshot(tabId, args, layoutOf);
  if (!Object.hasOwn(MAIN_WORLD_PROBES, name)) throw new Error(`unknown probe ${JSON.stringify(name)}`);
  const [frame] = await chrome.scripting.executeScript({
    target: { tabId }, world: "MAIN", func: MAIN_WORLD_PROBES[name], args: [args],
  });
  return frame.result;
}

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

// -- recording demonstrations ---------------------------------------------------------------

// Recorded steps go to the daemon one after another, in the order the page sent them, each
// with the screenshot of the moment before it (content.js `seen`), when one was taken.
let recordChain = Promise.resolve();
const snapshots = new Map();     // "tabId:id" → the screenshot being taken

function forwardRecorded(episodeId, step, tabId) {
  const key = `${tabId}:${step.shot}`;
  const shot = snapshots.get(key);
  snapshots.delete(key);
  recordChain = recordChain.then(async () => send({
    type: "record_step", episode_id: episodeId, action: step.action,
    observation: step.observation || null, target: step.target || null,
    screenshot: shot ? await shot.catch(() => null) : null,
  }));
  return recordChain;
}

/** Keep the newest few snapshots of a tab: a moment the user took no action from is dropped. */
function snapshot(tabId, id, layout) {
  snapshots.set(`${tabId}:${id}`, screenshot(tabId, {}, async () => layout));
  for (const key of [...snapshots.keys()].slice(0, -8)) snapshots.delete(key);
}

async function recordingIn(tabId) {
  const { recording } = await chrome.storage.session.get("recording");
  return recording && recording.tab_id === tabId ? recording : null;
}

async function fromContent(message, sender) {
  const recording = await recordingIn(sender.tab.id);
  if (message.type === "recording?") return { recording: Boolean(recording) && sender.frameId === 0 };
  if (message.type === "snapshot" && recording && sender.frameId === 0) {
    snapshot(sender.tab.id, message.id, message.layout);
    return { ok: true };
  }
  if (message.type === "recorded" && recording && sender.frameId === 0) {
    await forwardRecorded(recording.episode_id, message, sender.tab.id);
    return { ok: true };
  }
  return { ok: false };
}

// Navigations the user makes from the browser itself (typed URL, back/forward) are steps too;
// link clicks and form submissions are already recorded as the clicks that caused them.
chrome.webNavigation.onCommitted.addListener(async ({ tabId, frameId, url, transitionType, transitionQualifiers }) => {
  const recording = frameId === 0 ? await recordingIn(tabId) : null;
  if (!recording) return;
  if (transitionQualifiers.includes("forward_back")) {
    await forwardRecorded(recording.episode_id, { action: { action: "go_back" } });
  } else if (["typed", "generated", "auto_bookmark"].includes(transitionType)) {
    await forwardRecorded(recording.episode_id, { action: { action: "goto", url } });
  }
});

async function startRecording(task, requestId) {
  const tab = await lastWebTab();
  if (!tab) throw new Error("open the page where the task starts, then press Record");
  await setState({ recordTab: tab.id, lastError: null });
  return send({ type: "record_start", task, url: tab.url, tab_id: tab.id, request_id: requestId });
}

async function stopRecording(success, requestId) {
  const { recording } = await chrome.storage.session.get("recording");
  if (!recording) throw new Error("nothing is being recorded");
  const stop = { type: "record_stop", episode_id: recording.episode_id, success, request_id: requestId };
  try {
    const reply = await toContent(recording.tab_id, { type: "record", on: false });
    if (reply && reply.last) await forwardRecorded(recording.episode_id, reply.last, recording.tab_id);
    const seen = await toContent(recording.tab_id, { type: "observe" });    // where it ended
    if (seen && seen.ok) stop.observation = seen.observation;
  } catch {
    // the tab is gone: what was recorded so far is kept
  }
  await recordChain;
  await setState({ recording: null });
  return send(stop);
}

// -- the popup ----------------------------------------------------------------------------

async function fromPopup(message) {
  const requestId = `x${Date.now()}-${++requestCounter}`;
  switch (message.type) {
    case POPUP.RUN: {
      const tab = await lastWebTab();
      const task = { type: "task", task: message.task, source: "toolbar", request_id: requestId };
      if (message.url) task.url = message.url;
      if (tab && isWebUrl(tab.url)) task.tab_id = tab.id;
      await setState({ lastError: null });
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
      await chrome.action.setBadgeText({ text: "" });
      return send({ type: "approval", request_id: message.request_id, verdict: message.verdict });
    case POPUP.PAIR:
      await chrome.storage.session.set({
        pasted: { port: Number(message.port) || DEFAULT_PORT, token: message.token },
      });
      if (socket) socket.close();
      else connect();
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

chrome.alarms.create("reconnect", { periodInMinutes: 0.5 });
chrome.alarms.onAlarm.addListener((alarm) => {
  if (alarm.name === "reconnect") connect();
});
chrome.runtime.onStartup.addListener(connect);
chrome.runtime.onInstalled.addListener(connect);
connect();
