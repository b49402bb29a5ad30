// Accessible tabs (WAI-ARIA tablist): arrow keys move between tabs, one panel shows.

import { h } from "./dom.js";

let nextTabs = 0;

/**
 * tabs([{ key, label, panel, onShow?, onHide? }]) -> an element with a tablist and panels.
 * The first tab is shown; `onShow` runs when its tab is opened (also first), `onHide`
 * when another one is.
 */
export function tabs(items) {
  nextTabs += 1;
  const base = `tabs-${nextTabs}`;
  const buttons = [];
  const panels = [];
  let current = -1;

  function select(index, focus = false) {
    if (index === current) return;
    if (current >= 0 && items[current].onHide) items[current].onHide();
    current = index;
    buttons.forEach((b, i) => {
      b.setAttribute("aria-selected", String(i === index));
      b.tabIndex = i === index ? 0 : -1;
      panels[i].hidden = i !== index;
    });
    if (focus) buttons[index].focus();
    if (items[index].onShow) items[index].onShow();
  }

  items.forEach((item, i) => {
    const tabId = `${base}-tab-${item.key}`;
    const panelId = `${base}-panel-${item.key}`;
    buttons.push(
      h(
        "button",
        {
          type: "button",
          role: "tab",
          id: tabId,
          class: "tab",
          "aria-controls": panelId,
          "data-tab": item.key,
          onclick: () => select(i),
          onkeydown: (event) => {
            const step = { ArrowRight: 1, ArrowLeft: -1 }[event.key];
            if (step) {
              event.preventDefault();
              select((i + step + items.length) % items.length, true);
            }
          },
        },
        item.label,
      ),
    );
    panels.push(h("div", { role: "tabpanel", id: panelId, "aria-labelledby": tabId, class: "tab-panel" }, item.panel));
  });
  const element = h("div", { class: "tabs" }, h("div", { role: "tablist", class: "tablist" }, buttons), panels);
  select(0);
  return element;
}
