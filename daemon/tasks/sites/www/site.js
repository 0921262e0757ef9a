// What every bundled site shares: its world (from /api/world, kept for the tab's session), the
// state the user's actions leave (the ground truth the `sites.state` probe reads), and the
// small helpers that make each load differ (fresh element ids, shuffled order).

const Site = (() => {
  const key = (site) => `nightloop.site.${site}`;

  /** The site's world and state for this tab: the world for ?seed=N when the URL names a seed
   * (a new seed starts afresh), else the one this tab already has, else a random one. */
  async function open(site) {
    const seed = new URLSearchParams(location.search).get("seed");
    let saved = JSON.parse(sessionStorage.getItem(key(site)) || "null");
    if (!saved || (seed !== null && String(saved.seed) !== seed)) {
      const chosen = seed ?? String(Math.floor(Math.random() * 1e6));
      const reply = await fetch(`/api/world?site=${site}&seed=${encodeURIComponent(chosen)}`);
      if (!reply.ok) throw new Error(`no world for ${site}: ${reply.status}`);
      saved = { seed: chosen, world: await reply.json(), state: {} };
      sessionStorage.setItem(key(site), JSON.stringify(saved));
    }
    return saved;
  }

  /** Record what the user did (merged into the site's state for this tab). */
  function record(site, changes) {
    const saved = JSON.parse(sessionStorage.getItem(key(site)));
    Object.assign(saved.state, changes);
    sessionStorage.setItem(key(site), JSON.stringify(saved));
    return saved.state;
  }

  /** An element id that differs on every load. */
  const uid = (prefix) => `${prefix}-${Math.random().toString(36).slice(2, 8)}`;

  /** A copy of `items` in a new order on every load. */
  function shuffled(items) {
    const out = [...items];
    for (let i = out.length - 1; i > 0; i--) {
      const j = Math.floor(Math.random() * (i + 1));
      [out[i], out[j]] = [out[j], out[i]];
    }
    return out;
  }

  const escape = (text) => String(text).replace(/[&<>"']/g,
    (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);

  /** A labelled field: [label, control] with matching fresh ids. */
  function field(label, control) {
    const id = uid("f");
    return `<label for="${id}">${escape(label)}</label> ${control.replace("ID", id)}`;
  }

  /** Mark the page rendered (the harness waits for it before the first step). */
  function ready() {
    document.documentElement.dataset.siteReady = "yes";
  }

  return { open, record, uid, shuffled, escape, field, ready };
})();
