// The state the popup renders, kept in chrome.storage.session: the service worker itself may
// be stopped and restarted by Chrome at any time, so it keeps nothing important in globals.

import { toContent } from "./tabs.js";

export async function setState(patch) {
  await chrome.storage.session.set(patch);
}

export async function onEpisode(episode, notice = null) {
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

export async function onStep(episodeId, step) {
  const { episode, steps = [] } = await chrome.storage.session.get(["episode", "steps"]);
  if (episode && episode.id !== episodeId) return;
  await setState({ steps: [...steps.filter((s) => s.index !== step.index), step] });
}

/** The daemon's word on one practice rule: kept per site (and per episode for a task). */
export async function onPractice(rule) {
  const { practice = {} } = await chrome.storage.session.get("practice");
  const key = rule.episode_id != null ? `episode:${rule.episode_id}` : `site:${rule.site}`;
  await setState({ practice: { ...practice, [key]: rule.allowed } });
}

/** A sensitive action waits for the user: the popup shows it (a badge says so while closed)
 * until they answer or its time is up, when the daemon denies it. */
export async function onApprovalAsk(ask) {
  await setState({ approval: { ...ask, until: Date.now() + ask.timeout * 1000 } });
  await showBadge();
  setTimeout(async () => {
    const { approval } = await chrome.storage.session.get("approval");
    if (approval?.request_id !== ask.request_id) return;
    await setState({ approval: null });
    await showBadge();
  }, ask.timeout * 1000);
}

/** A night whose adapter now serves, not yet seen in the popup (the newest night's id; kept in
 * storage.local, so a browser restart does not show it as new again). */
async function unseenNight() {
  const { night } = await chrome.storage.session.get("night");
  const { seenNight = 0 } = await chrome.storage.local.get("seenNight");
  const report = night?.report;
  return report && report.state === "serving" && report.night.id > seenNight ? report : null;
}

/** The toolbar badge: "?" while an approval waits, "new" after a night that changed the
 * serving adapter until the popup shows it, else none. */
export async function showBadge() {
  const { approval } = await chrome.storage.session.get("approval");
  const text = approval ? "?" : (await unseenNight()) ? "new" : "";
  await chrome.action.setBadgeText({ text });
}

/** The daemon's word on the last night: kept for the popup's panel; a night that changed the
 * serving adapter marks the badge, and, where the user asked for it (`notify_after_night`),
 * a notification says what it learned, once per night. */
export async function onNight(message) {
  await setState({ night: message });
  await showBadge();
  const report = await unseenNight();
  const { notifiedNight = 0 } = await chrome.storage.local.get("notifiedNight");
  if (!message.notify || !report || report.night.id <= notifiedNight) return;
  await chrome.storage.local.set({ notifiedNight: report.night.id });
  chrome.notifications.create(`night-${report.night.id}`, {
    type: "basic", iconUrl: chrome.runtime.getURL("icon-128.png"),
    title: "nightloop learned last night", message: report.outcome,
  });
}

/** The popup showed night `nightId`: it is no longer new. */
export async function seenNight(nightId) {
  const { seenNight: seen = 0 } = await chrome.storage.local.get("seenNight");
  if (nightId > seen) await chrome.storage.local.set({ seenNight: nightId });
  await showBadge();
}
