// Meeting mode's keys: PageDown and PageUp (what a presentation clicker sends) step to the next
// or previous outcome section, a section taller than the screen a screen at a time.
// evidence/ui/meeting.py loads this file; it acts only while the page shows the meeting header,
// and leaves a key pressed in a field (a select box, a table) to that field.
(() => {
  if (window.__meetingKeys) return;
  window.__meetingKeys = true;
  const HEADER = ".st-key-meeting_header";
  const STOPS = '[class*="st-key-outcome_"], [class*="st-key-sof_"]';
  const FIELDS =
    "input, textarea, select, [contenteditable], [role=combobox], [role=listbox], [role=grid]";
  const SLACK = 4; // px: a section this close to the header's edge is at the top

  const pane = (element) => {
    for (let node = element.parentElement; node; node = node.parentElement) {
      const overflow = getComputedStyle(node).overflowY;
      if ((overflow === "auto" || overflow === "scroll") && node.scrollHeight > node.clientHeight) {
        return node;
      }
    }
    return document.scrollingElement;
  };
  // The outcome sections, outermost only, in page order.
  const sections = () =>
    Array.from(document.querySelectorAll(STOPS)).filter(
      (element) => !element.parentElement.closest(STOPS) && element.getClientRects().length > 0,
    );
  const top = (element) => element.getBoundingClientRect().top;
  // Where a section's content ends (its box can be taller: a section fills a screen at least).
  const end = (element) =>
    Math.max(top(element), ...Array.from(element.children, (c) => c.getBoundingClientRect().bottom));

  // How far to scroll for one press: to the next (previous) section's start, through a section
  // taller than the screen a screen at a time, and a screen where there is no section to go to.
  const step = (down) => {
    const header = document.querySelector(HEADER);
    const all = sections();
    // The header's band (its wrapper carries the border) is where the page shows under it.
    const edge = (header.closest('[data-testid="stLayoutWrapper"]') || header).getBoundingClientRect()
      .bottom;
    const screen = window.innerHeight - edge - 2 * SLACK;
    const index = all.findLastIndex((s) => top(s) <= edge + SLACK);
    const current = all[index];
    if (down) {
      if (current && end(current) > window.innerHeight + SLACK) {
        return Math.min(end(current) - window.innerHeight + SLACK, screen);
      }
      const next = all[index + 1];
      return next ? top(next) - edge : screen;
    }
    if (current && top(current) < edge - SLACK) return Math.max(top(current) - edge, -screen);
    const previous = all[index - 1];
    return previous ? top(previous) - edge : -screen;
  };

  document.addEventListener(
    "keydown",
    (event) => {
      if (event.key !== "PageDown" && event.key !== "PageUp") return;
      if (event.altKey || event.ctrlKey || event.metaKey || event.shiftKey) return;
      if (event.target instanceof Element && event.target.closest(FIELDS)) return;
      const header = document.querySelector(HEADER);
      if (!header) return; // not in meeting mode
      event.preventDefault();
      pane(header).scrollBy({ top: step(event.key === "PageDown"), behavior: "instant" });
    },
    true,
  );
})();
