// The agent's tabs: the daemon's observe, act and probe requests, answered once a navigation
// an action caused has loaded; messages to a tab's content script, injected where missing.

import { guardNetwork } from "./network_guard.js";
import { MAIN_WORLD_PROBES } from "./probes.js";
import { isWebUrl, lastWebTab } from "./protocol.js";
import { screenshot } from "./screenshots.js";

const LOAD_TIMEOUT_MS = 15_000;
const NAV_START_MS = 1_000;      // a navigation the page began reaches the browser by then
const BACK_TIMEOUT_MS = 2_000;   // history.back() with no history does nothing: stop waiting
// The content script, in the order the manifest loads it.
const CONTENT_SCRIPTS = chrome.runtime.getManifest().content_scripts[0].js;

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
 * `expectMs`: how long to wait for a navigation that must come (goto, go_back, or one the
 * page said it began) to reach the browser; 0: none is expected, so none is waited for.
 * Resolves to whether a navigation happened. */
async function settle(tabId, since, expectMs = 0) {
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
export async function toContent(tabId, message) {
  try {
    return await chrome.tabs.sendMessage(tabId, message, { frameId: 0 });
  } catch {
    // Pages loaded before the extension have no content script yet.
    await chrome.scripting.executeScript({ target: { tabId }, files: CONTENT_SCRIPTS });
    return await chrome.tabs.sendMessage(tabId, message, { frameId: 0 });
  }
}

/** @param {{request_id: string, tab_id?: number}} request */
export async function observe(request) {
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
export async function act(request) {
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
      // No answer (the page went away mid-action): a navigation may be under way.
      const began = !response || response.navigating;
      reply.detail = { ...(reply.detail || {}), navigated: await settle(tabId, since, began ? NAV_START_MS : 0) };
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

/** The content script's layout of the tab (observation.js `layout`), null when it has none. */
async function layoutOf(tabId, cover) {
  const response = await toContent(tabId, { type: "layout", cover });
  return response && response.ok ? response.layout : null;
}

/** Run a named probe: the browser-wide network guard (no tab), or one in a tab.
 * @param {{request_id: string, tab_id?: number, probe: string, args?: object}} request */
export async function probe(request) {
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
