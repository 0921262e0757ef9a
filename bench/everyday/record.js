// What the user's actions leave on these hand-written pages, for the `sites.state` probe (site
// "everyday"): every named control's value now, the values at each submit, and row actions.
const Everyday = (() => {
  const KEY = "nightloop.site.everyday";
  const saved = { seed: 0, state: { values: {}, submitted: [], acted: [] } };
  const read = (el) => (el.type === "checkbox" ? el.checked
    : el.type === "radio" ? (el.checked ? el.value : undefined)
    : el.tagName === "SELECT" ? el.selectedOptions[0]?.text ?? "" : el.value);

  function values() {
    const out = {};
    for (const el of document.querySelectorAll("[name]")) {
      const value = read(el);
      if (value !== undefined) out[el.name] = value;
      else if (!(el.name in out)) out[el.name] = "";
    }
    return out;
  }
  const save = () => sessionStorage.setItem(KEY, JSON.stringify(saved));
  function record() { saved.state.values = values(); save(); }

  addEventListener("input", record);
  addEventListener("change", record);
  addEventListener("submit", (event) => {
    event.preventDefault();
    record();
    saved.state.submitted.push(values());
    save();
    const note = document.querySelector("[role=status]");
    if (note) note.textContent = note.dataset.saved || "Saved.";
  });
  addEventListener("DOMContentLoaded", () => {
    record();
    document.documentElement.dataset.siteReady = "yes";
  });
  return { act(what) { saved.state.acted.push(what); record(); } };
})();
