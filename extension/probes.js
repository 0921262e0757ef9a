// Named, fixed functions the daemon may run in a page's main world (where page globals live)
// for benchmark harnesses. Nothing else: the daemon cannot send code, only a probe name and
// JSON arguments. Each returns a JSON-serialisable object.

/** Seed and start a MiniWoB++ episode; returns whether the task is ready and its utterance.
 * Waits for the page's own start-up (window.onload → core.startEpisode) to finish first. */
async function miniwobStart({ seed, max_time_ms }) {
  if (document.readyState !== "complete") {
    await new Promise((resolve) => addEventListener("load", resolve, { once: true }));
  }
  if (typeof core === "undefined" || typeof Math.seedrandom !== "function") {
    return { error: "this page is not a MiniWoB++ task" };
  }
  for (let i = 0; i < 250 && !core.cover_div; i++) {
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  Math.seedrandom(String(seed));
  core.EPISODE_MAX_TIME = max_time_ms;
  core.startEpisodeReal();
  // The score board shows rewards: neither the agent nor a judge may read the ground truth
  // off the page (BrowserGym's observations leave it out too).
  const board = document.getElementById("reward-display");
  if (board) board.style.display = "none";
  return { ready: WOB_TASK_READY, utterance: core.getUtterance() };
}

/** The MiniWoB++ episode's state and ground-truth reward. */
function miniwobState() {
  if (typeof core === "undefined") return { error: "this page is not a MiniWoB++ task" };
  return {
    ready: WOB_TASK_READY, done: WOB_DONE_GLOBAL, raw_reward: WOB_RAW_REWARD_GLOBAL,
    reward: WOB_REWARD_GLOBAL, reason: WOB_REWARD_REASON, utterance: core.getUtterance(),
  };
}

/** A bundled site's state for this tab (what the user's actions left: the ground truth), and
 * whether its page has rendered. */
function sitesState({ site }) {
  const saved = JSON.parse(sessionStorage.getItem(`nightloop.site.${site}`) || "null");
  return {
    ready: document.documentElement.dataset.siteReady === "yes",
    seed: saved ? saved.seed : null, state: saved ? saved.state : null,
  };
}

export const MAIN_WORLD_PROBES = Object.freeze({
  "miniwob.start": miniwobStart,
  "miniwob.state": miniwobState,
  "sites.state": sitesState,
});
